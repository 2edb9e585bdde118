import os

import pytest

from tests.browser.conftest import wait_until

pytestmark = pytest.mark.browser

# Set OMNI_SCREENSHOT_DIR to keep a picture of the home page (for judging the design by eye).
SCREENSHOT_DIR = os.environ.get("OMNI_SCREENSHOT_DIR")


def test_associate_signs_in_sees_their_store_and_signs_out(page, login, live_url, associate):
    login(page, "associate")

    assert page.get_by_test_id("home-location").inner_text().startswith("Working for Austin Downtown")
    assert page.get_by_test_id("current-location").inner_text() == "Austin Downtown"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Home").get_attribute("aria-current") == "page"
    assert nav.get_by_role("link", name="Back office").count() == 0
    sign_out = page.get_by_test_id("sign-out")
    assert sign_out.bounding_box()["height"] >= 44
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "home-associate.png"), full_page=True)

    sign_out.click()

    page.wait_for_url(f"{live_url}/login/")
    page.goto(f"{live_url}/")
    page.wait_for_url(f"{live_url}/login/?next=/")


def test_wrong_password_shows_the_message_on_the_form(page, live_url, associate):
    page.goto(f"{live_url}/login/")
    page.get_by_label("Username").fill("associate")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    assert "do not match" in page.get_by_test_id("login-error").inner_text()
    assert page.get_by_label("Username").input_value() == "associate"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024


def test_manager_with_two_stores_switches_location_from_the_top_bar(page, login, live_url, manager, store, other_store):
    manager.extra_locations.add(other_store)
    login(page, "manager")

    page.locator("#location-top").select_option(label="Austin Domain")

    page.wait_for_load_state("load")
    wait_until(page, "document.querySelector('#location-top').selectedOptions[0].text === 'Austin Domain'")
    assert "Austin Domain" in page.get_by_test_id("home-location").inner_text()
