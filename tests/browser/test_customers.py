"""Customers in the browser: capture a new customer in the picker (as the checkout will embed it) and
find them again by phone; the customer page degrades quietly while orders' history is missing.

The checkout page does not exist yet, so the picker's own page stands in for it: the same
fragment, inside a form, writing the chosen id into a field (see templates/customers/picker.html).
"""

import os

import pytest

from customers.models import ConsentEvent, Customer
from tests.factories.customers import make_customer

pytestmark = pytest.mark.browser

SCREENSHOT_DIR = os.environ.get("OMNI_SCREENSHOT_DIR")


def test_capture_a_new_customer_in_the_picker_and_find_them_again_by_phone(page, login, live_url, associate):
    login(page, "associate")
    page.goto(f"{live_url}/customers/picker/?target=customer_id")
    picker = page.get_by_test_id("customer-picker")
    chosen_id = page.get_by_test_id("picked-customer-id")

    # Nobody answers to that number yet.
    picker.get_by_test_id("picker-search").fill("512 555 0190")
    picker.get_by_text("No customer found").wait_for()

    # Create inline with the fewest fields; consent boxes start unticked.
    picker.get_by_test_id("picker-new").click()
    assert not picker.get_by_label("Yes, send me offers by email").is_checked()
    assert not picker.get_by_label("Yes, send me offers by SMS").is_checked()
    picker.get_by_label("Name").fill("Nora Quill")
    picker.get_by_label("Phone").fill("512 555 0190")
    picker.get_by_label("Yes, send me offers by SMS").check()
    picker.get_by_role("button", name="Add and choose").click()

    picker.get_by_test_id("picker-chosen-name").wait_for()
    customer = Customer.objects.get(phone="+15125550190")
    assert chosen_id.input_value() == str(customer.pk)
    assert picker.get_by_test_id("picker-chosen-name").inner_text().startswith("Nora Quill")
    assert customer.name == "Nora Quill"
    assert list(ConsentEvent.objects.filter(customer=customer).values_list("channel", "granted")) == [("sms", True)]
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "customer-picker-created.png"), full_page=True)

    # Next visit: clear, then find them by phone typed another way.
    picker.get_by_role("button", name="Change").click()
    assert chosen_id.input_value() == ""
    picker.get_by_test_id("picker-search").fill("(512) 555-0190")
    result = picker.get_by_role("button", name="Nora Quill")
    result.wait_for()
    assert result.bounding_box()["height"] >= 44
    result.click()

    assert chosen_id.input_value() == str(customer.pk)
    assert Customer.objects.filter(phone="+15125550190").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024


def test_search_screen_finds_as_you_type_and_opens_the_customer_page(page, login, live_url, associate):
    customer = make_customer(name="Otto Finch", phone="5125550191", email="otto@example.com")
    login(page, "associate")
    page.goto(f"{live_url}/customers/")

    page.get_by_test_id("customer-search").fill("0191")
    page.get_by_role("link", name="Otto Finch").click()

    page.wait_for_url(f"{live_url}/customers/{customer.pk}/")
    assert page.get_by_test_id("customer-name").inner_text() == "Otto Finch"
    # The orders app serves the order history into the page.
    page.get_by_test_id("customer-orders").get_by_text("No orders yet.").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "customer-page.png"), full_page=True)


def test_customer_page_hides_the_orders_slot_quietly_when_the_fragment_is_missing(page, login, live_url, associate):
    customer = make_customer(name="Pia Lund")
    login(page, "associate")
    page.route("**/orders/customer/*/history/", lambda route: route.fulfill(status=404, body="Not found"))

    page.goto(f"{live_url}/customers/{customer.pk}/")
    page.wait_for_load_state("networkidle")

    assert page.get_by_test_id("customer-name").inner_text() == "Pia Lund"
    assert page.locator("#customer-orders").is_hidden()
    assert page.locator("#toasts .toast").count() == 0
