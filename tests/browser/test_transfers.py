"""Transfers in a real browser: the warehouse picks by scanning and dispatches, the store receives by
scanning (expected vs counted, live) and a manager deals with the difference; the dashboard draws."""

import os

import pytest

from tests.browser.conftest import wait_until
from tests.factories import VariantFactory
from tests.factories.transfers import SYSTEM, PolicyFactory, level, put_stock, stock_history
from transfers import services
from transfers.models import Transfer, TransferStatus
from transfers.tasks import transfers_plan_task

pytestmark = pytest.mark.browser
SCREENSHOT_DIR = os.environ.get("OMNI_SCREENSHOT_DIR")


def shot(page, name):
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, f"{name}.png"), full_page=True)


def scan(page, code):
    field = page.get_by_test_id("scan")
    field.fill(code)
    field.press("Enter")


def test_pick_dispatch_receive_and_acknowledge_a_shortage(
    page, login, live_url, warehouse, store, warehouse_operator, associate, manager
):
    shirt, socks = VariantFactory(), VariantFactory()
    put_stock(warehouse, shirt, 10)
    put_stock(warehouse, socks, 10)
    transfer = services.transfer_create(
        actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(shirt.pk, 2), (socks.pk, 1)]
    )
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)

    # The warehouse picks by scanning...
    login(page, "warehouse")
    page.goto(f"{live_url}/transfers/")
    page.get_by_test_id("outgoing").get_by_role("link", name="Pick").click()
    scan(page, shirt.barcode)
    page.get_by_test_id("scan-message").filter(has_text="1 of 2 picked").wait_for()
    assert page.get_by_test_id("scan").evaluate("node => node === document.activeElement")
    scan(page, shirt.barcode)
    scan(page, "NOT-A-CODE")
    page.get_by_test_id("scan-error").filter(has_text="No product with barcode or SKU NOT-A-CODE").wait_for()
    scan(page, socks.sku)
    page.get_by_test_id("picked-total").filter(has_text="3").wait_for()
    assert page.get_by_test_id("dispatch").bounding_box()["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    shot(page, "transfers-pick")
    page.get_by_test_id("dispatch").click()
    page.wait_for_url(f"{live_url}/transfers/{transfer.pk}/")
    page.get_by_test_id("transfer-status").filter(has_text="In transit").wait_for()
    assert level(store, shirt).incoming == 2

    # ...the store counts what arrives, sees the difference live, and books it.
    page.context.clear_cookies()
    login(page, "associate")
    page.goto(f"{live_url}/transfers/{transfer.pk}/receive/")
    scan(page, shirt.barcode)
    page.get_by_test_id("counted-total").filter(has_text="1").wait_for()
    assert "2 missing" in page.get_by_test_id("variance-summary").inner_text()
    scan(page, socks.barcode)
    page.get_by_test_id("counted-total").filter(has_text="2").wait_for()
    shot(page, "transfers-receive")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("finish").click()
    page.wait_for_url(f"{live_url}/transfers/{transfer.pk}/")
    page.get_by_test_id("discrepancy").wait_for()
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.DISCREPANCY
    assert level(store, shirt).on_hand == 1

    # A manager sees it waiting and acknowledges it from the approvals list.
    page.context.clear_cookies()
    login(page, "manager")
    page.goto(f"{live_url}/transfers/exceptions/")
    shot(page, "transfers-exceptions")
    assert not page.get_by_test_id("exceptions-done").is_visible()
    page.get_by_test_id(f"acknowledge-{transfer.pk}").click()
    page.get_by_test_id(f"exception-{transfer.pk}").wait_for(state="detached")
    page.get_by_test_id("exceptions-done").wait_for(state="visible")  # not a bare table header


def test_manager_approves_a_planned_exception_and_reads_why(page, login, live_url, warehouse, store, manager):
    PolicyFactory(location=store, auto_approve_max_units=1)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=2, sold=28)
    transfers_plan_task(planners=["replenishment"], key="browser-run")
    transfer = Transfer.objects.get()

    login(page, "manager")
    page.goto(f"{live_url}/transfers/{transfer.pk}/")
    assert "cover 2 d < target 14 d" in page.get_by_test_id("why").first.inner_text()
    assert "automatic limit 1" in page.get_by_test_id("needs-approval").inner_text()
    page.locator("details summary").first.click()
    shot(page, "transfers-detail")
    page.get_by_test_id("approve").click()
    page.get_by_test_id("transfer-status").filter(has_text="Approved").wait_for()
    assert level(warehouse, variant).reserved == 12


def test_dashboard_draws_its_charts(page, login, live_url, warehouse, store, manager):
    PolicyFactory(location=store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=0, sold=28)
    transfers_plan_task(planners=["replenishment"], key="browser-dash")

    login(page, "manager")
    page.goto(f"{live_url}/transfers/dashboard/")

    wait_until(page, "document.querySelectorAll('canvas[data-drawn=true]').length === 5")
    assert page.get_by_test_id("kpi-in-flight").inner_text() == "1"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    shot(page, "transfers-dashboard")
