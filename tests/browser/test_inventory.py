"""Inventory in the browser: scan to the product, watch the grid change live; count by scanning.

Live updates need a server that streams (server-sent events): pytest-django's `live_server` is a
threaded WSGI server and cannot, so these tests run Omni under uvicorn (ASGI) in a thread of the
test process (tests/asgi_server.py), on the transactional test database: what the test commits,
the server sees, and its live hub picks up through Redis exactly as in production.
"""

from __future__ import annotations

import os
import time

import pytest
from playwright.sync_api import expect

from inventory import services
from omni import live_stream
from tests.asgi_server import asgi_server
from tests.browser.conftest import TABLET
from tests.factories import ProductFactory, VariantFactory
from tests.factories.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT_DIR = os.environ.get("OMNI_SCREENSHOT_DIR")


@pytest.fixture
def asgi_url(transactional_db):
    with asgi_server() as base_url:
        yield base_url


@pytest.fixture
def tablet(browser, asgi_url):
    context = browser.new_context(viewport=TABLET, base_url=asgi_url, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def tee(associate, store, other_store):
    product = ProductFactory(name="Organic Tee", style="TEE-1")
    variants = {
        size: VariantFactory(product=product, colour="Navy", size=size, sku=f"TEE-1-NVY-{size}")
        for size in ("S", "M", "L")
    }
    VariantFactory(product=product, colour="Sand", size="M", sku="TEE-1-SND-M")
    services.stock_receive(actor=associate, location_id=store.pk, variant_id=variants["M"].pk, quantity=3)
    services.stock_receive(actor=associate, location_id=other_store.pk, variant_id=variants["M"].pk, quantity=6)
    return product, variants


def test_associate_scans_a_barcode_and_sees_the_grid_change_live(tablet, associate, store, other_store, tee):
    product, variants = tee
    medium = variants["M"]
    sign_in(tablet, "associate")

    # A hand scanner is a keyboard: digits, then Enter.
    tablet.goto("/stock/")
    tablet.get_by_test_id("scan-input").press_sequentially(medium.barcode, delay=5)
    tablet.keyboard.press("Enter")

    tablet.wait_for_url(f"**/stock/products/{product.pk}/**")
    cell = tablet.get_by_test_id(f"cell-{store.pk}-{medium.pk}")
    assert cell.inner_text().strip() == "3"
    assert tablet.get_by_test_id(f"cell-{other_store.pk}-{medium.pk}").inner_text().strip() == "6"
    assert cell.bounding_box()["height"] >= 44
    assert tablet.evaluate("document.documentElement.scrollWidth") <= 1024
    assert wait_for(lambda: live_stream._latest is not None and live_stream._latest.client_count >= 1)
    tablet.evaluate("window.__notReloaded = true")

    # Another session (the test thread: think of a delivery booked on another till) commits a change.
    started = time.monotonic()
    services.stock_receive(actor=associate, location_id=store.pk, variant_id=medium.pk, quantity=4)

    expect(tablet.get_by_test_id(f"cell-{store.pk}-{medium.pk}")).to_have_text("7", timeout=2000)
    elapsed = time.monotonic() - started
    assert tablet.evaluate("window.__notReloaded") is True
    assert elapsed < 2.0

    # Tap the cell: the breakdown, which then follows live changes as well.
    tablet.get_by_test_id(f"cell-{store.pk}-{medium.pk}").click()
    assert tablet.get_by_test_id("detail-on_hand").inner_text() == "7"
    # No wait for htmx to settle: a change that lands before the panel listens is caught up (live.js).
    services.stock_reserve(actor=associate, location_id=store.pk, variant_id=medium.pk, quantity=2)
    expect(tablet.get_by_test_id("detail-reserved")).to_have_text("2", timeout=2000)
    assert tablet.get_by_test_id("detail-available").inner_text() == "5"
    assert tablet.get_by_test_id(f"cell-{store.pk}-{medium.pk}").inner_text().strip() == "5"
    assert tablet.evaluate("document.documentElement.scrollWidth") <= 1024
    if SCREENSHOT_DIR:
        tablet.screenshot(path=os.path.join(SCREENSHOT_DIR, "inventory-product.png"), full_page=True)


def test_a_breakdown_rendered_before_a_change_catches_up_when_it_arrives_after_it(tablet, associate, store, tee):
    # The breakdown's answer is held back (page.route) while a change commits and its message passes:
    # the panel starts listening only after that message, so only its data-live-since can tell it is stale.
    product, variants = tee
    medium = variants["M"]  # 3 on hand here
    sign_in(tablet, "associate")
    tablet.goto(f"/stock/products/{product.pk}/?colour=Navy")
    assert wait_for(lambda: live_stream._latest is not None and live_stream._latest.client_count >= 1)
    tablet.evaluate("window.__notReloaded = true")

    def render_then_change_then_deliver(route):
        response = route.fetch()  # the server renders the breakdown now: nothing reserved
        services.stock_reserve(actor=associate, location_id=store.pk, variant_id=medium.pk, quantity=2)
        # The change's message reaches the page while the breakdown is on its way: the grid follows it
        # (and its refresh must not abort the tap, which syncs on the breakdown).
        expect(tablet.get_by_test_id(f"cell-{store.pk}-{medium.pk}")).to_have_text("1", timeout=2000)
        route.fulfill(response=response)

    tablet.route(f"**/stock/levels/{store.pk}/{medium.pk}/", render_then_change_then_deliver, times=1)
    tablet.get_by_test_id(f"cell-{store.pk}-{medium.pk}").click()

    # Its listener was bound after the message passed, yet the breakdown catches up by itself.
    expect(tablet.get_by_test_id("detail-reserved")).to_have_text("2", timeout=2000)
    assert tablet.get_by_test_id("detail-available").inner_text() == "1"
    assert tablet.evaluate("window.__notReloaded") is True


def test_typing_a_name_shows_results_as_you_type(tablet, associate, tee):
    sign_in(tablet, "associate")
    tablet.goto("/stock/")

    tablet.get_by_test_id("scan-input").press_sequentially("organic", delay=20)

    result = tablet.get_by_test_id("result").first
    result.wait_for()
    assert "Organic Tee" in result.inner_text()
    assert result.bounding_box()["height"] >= 44
    if SCREENSHOT_DIR:
        tablet.screenshot(path=os.path.join(SCREENSHOT_DIR, "inventory-search.png"), full_page=True)


def test_manager_counts_by_scanning_and_books_the_count(tablet, manager, store, tee):
    _, variants = tee
    medium = variants["M"]  # 3 on hand here
    sign_in(tablet, "manager")
    tablet.goto("/stock/count/")
    field = tablet.get_by_test_id("count-code")

    for _ in range(4):  # four quick scans, each while the last may still be in flight
        field.press_sequentially(medium.barcode, delay=2)
        field.press("Enter")

    line = tablet.get_by_test_id(f"line-{medium.sku}")
    expect(line.get_by_test_id("counted")).to_have_text("4")
    assert line.get_by_test_id("variance").inner_text().strip() == "+1"
    if SCREENSHOT_DIR:
        tablet.screenshot(path=os.path.join(SCREENSHOT_DIR, "inventory-count.png"), full_page=True)

    tablet.get_by_test_id("count-finish").click()

    tablet.get_by_test_id("count-result").wait_for()
    assert medium.stock_levels.get(location=store).on_hand == 4


def test_manager_sees_an_adjustment_error_in_place(tablet, manager, tee):
    _, variants = tee
    sign_in(tablet, "manager")
    tablet.goto("/stock/adjust/")

    code = tablet.get_by_test_id("adjust-code")
    code.press_sequentially(variants["M"].barcode, delay=2)  # a scanner: digits, then Enter
    code.press("Enter")
    expect(tablet.get_by_test_id("adjust-delta")).to_be_focused()  # Enter moved on, did not submit
    tablet.keyboard.type("-10")
    tablet.get_by_test_id("adjust-reason").select_option("shrinkage")
    tablet.get_by_test_id("adjust-submit").click()

    error = tablet.get_by_test_id("error-delta")
    error.wait_for()
    assert "Not enough" in error.inner_text()
    assert tablet.get_by_test_id("adjust-delta").input_value() == "-10"
    assert variants["M"].stock_levels.get(location__code="aus-1").on_hand == 3


def test_low_stock_list_picks_up_a_sale_elsewhere_live(tablet, associate, store, tee):
    _, variants = tee
    small = variants["S"]
    services.stock_receive(actor=associate, location_id=store.pk, variant_id=small.pk, quantity=5)
    sign_in(tablet, "associate")
    tablet.goto("/stock/low/")
    expect(tablet.get_by_test_id(f"low-{variants['M'].sku}")).to_be_hidden()  # 3 > 2
    assert wait_for(lambda: live_stream._latest is not None and live_stream._latest.client_count >= 1)

    services.stock_sell_now(actor=associate, location_id=store.pk, variant_id=small.pk, quantity=4)

    row = tablet.get_by_test_id(f"low-{small.sku}")
    expect(row).to_be_visible(timeout=3000)  # 1 left: on the list without a reload
    assert "1" in row.inner_text()
    assert tablet.evaluate("document.documentElement.scrollWidth") <= 1024
    if SCREENSHOT_DIR:
        tablet.screenshot(path=os.path.join(SCREENSHOT_DIR, "inventory-low-stock.png"), full_page=True)
        tablet.goto(f"/stock/ledger/{small.pk}/")
        tablet.screenshot(path=os.path.join(SCREENSHOT_DIR, "inventory-ledger.png"), full_page=True)
