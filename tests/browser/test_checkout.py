"""The selling journey on a 1024x768 tablet in Chromium.

A store associate scans and searches items into a cart with a take-now, a ship and a collect line,
captures the customer, pays with a card and cash, and sees the receipt. A warehouse operator picks
(scanning each unit), packs and ships. The store marks the collect line ready and hands it over
after checking the emailed code. A return at another store puts the item back on its shelf.
"""

import os
import re
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import expect

from inventory.models import StockLevel
from orders.models import Fulfilment, FulfilmentKind, Order, Status
from tests.factories.customers import make_customer
from tests.factories.inventory import ProductFactory, VariantFactory
from tests.factories.orders import give_stock

pytestmark = pytest.mark.browser
SCREENSHOT_DIR = os.environ.get("OMNI_SCREENSHOT_DIR")


@pytest.fixture
def eager_celery():
    from omni.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def shop(store, other_store, warehouse):
    store.offers_pickup = True
    store.save()
    tee = VariantFactory(product=ProductFactory(name="Cotton Tee"), price=Decimal("20.00"), size="M")
    coat = VariantFactory(product=ProductFactory(name="Wool Coat"), price=Decimal("150.00"), size="L")
    scarf = VariantFactory(product=ProductFactory(name="Silk Scarf"), price=Decimal("30.00"), size="OS")
    give_stock(store, tee, 5)
    give_stock(warehouse, coat, 3)
    give_stock(store, scarf, 2)
    customer = make_customer(name="Grace Hopper", email="grace@example.com")
    return {"tee": tee, "coat": coat, "scarf": scarf, "customer": customer}


def add_by_search(page, name, kind_label, sku):
    page.get_by_test_id("scan-input").fill(name)
    page.get_by_test_id(f"add-{kind_label}-{sku}").click()
    page.wait_for_selector(f'[data-testid="cart"] [data-sku="{sku}"]')


def sign_in_as(page, login, username):
    page.context.clear_cookies()
    login(page, username)


def test_sell_ship_collect_fulfil_and_return(
    page,
    login,
    live_url,
    shop,
    associate,
    warehouse_operator,
    other_manager,
    store,
    other_store,
    warehouse,
    eager_celery,
):
    tee, coat, scarf = shop["tee"], shop["coat"], shop["scarf"]
    login(page, "associate")
    page.goto(f"{live_url}/sell/")

    # Scan the tee (a hand scanner types the barcode and Enter): a take-now line.
    page.get_by_test_id("scan-input").fill(tee.barcode)
    page.get_by_test_id("scan-input").press("Enter")
    page.wait_for_selector(f'[data-testid="cart"] [data-sku="{tee.sku}"][data-kind="take_now"]')
    # Search the coat by name and ship it; search the scarf and collect it here.
    add_by_search(page, "Wool", "ship", coat.sku)
    add_by_search(page, "Silk", "collect", scarf.sku)
    cart = page.get_by_test_id("cart")
    assert "Ships from Central Warehouse" in cart.locator(f'[data-sku="{coat.sku}"]').inner_text()
    assert "Collect at Austin Downtown" in cart.locator(f'[data-sku="{scarf.sku}"]').inner_text()
    assert page.get_by_test_id("needs-customer").is_visible()
    assert page.get_by_test_id("total").inner_text() == "200.00"

    # The cart survives a reload.
    page.reload()
    assert page.get_by_test_id("cart").locator("article").count() == 3

    # Capture the customer with the picker (lookup as you type).
    page.get_by_test_id("picker-search").fill("grace")
    page.get_by_test_id("picker-results").get_by_text("Grace Hopper").click()
    page.wait_for_selector('[data-testid="sale-customer"]')
    assert "Grace Hopper" in page.get_by_test_id("sale-customer").inner_text()

    # Deliver to an address, then pay 150 by card and 50 in cash (given 60).
    page.get_by_test_id("ship-line1").fill("1 Navy Way")
    page.get_by_test_id("ship-city").fill("Arlington")
    with page.expect_response(lambda response: "/sell/address/" in response.url):
        page.get_by_test_id("ship-postcode").fill("22202")
        page.get_by_test_id("ship-postcode").press("Tab")  # the address saves on change (htmx)
    page.get_by_test_id("card-amount").fill("150.00")
    page.get_by_test_id("card-ref").fill("AUTH-991")
    page.get_by_test_id("card-last4").fill("4242")
    page.locator("[data-fill=cash_amount]").click()
    assert page.get_by_test_id("cash-amount").input_value() == "50.00"
    page.get_by_test_id("cash-tendered").fill("60")
    assert "Change due: 10.00" in page.locator("[data-change-due]").inner_text()
    assert page.get_by_test_id("place-order").bounding_box()["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "sell.png"), full_page=True)
    page.get_by_test_id("place-order").click()

    page.wait_for_url(re.compile(r".*/orders/SO-\d+/receipt/$"))
    assert page.get_by_test_id("receipt-total").inner_text() == "200.00"
    assert page.get_by_test_id("receipt-tax").inner_text() != "0.00"
    payments = page.get_by_test_id("receipt-payment").all_inner_texts()
    assert any("ending 4242" in p for p in payments) and any("change 10.00" in p for p in payments)
    order = Order.objects.get()
    assert order.ship_line1 == "1 Navy Way"
    assert any(m.subject == f"Your order {order.number}" for m in mail.outbox)

    # The warehouse picks (each unit scanned), packs and ships.
    sign_in_as(page, login, "warehouse")
    page.goto(f"{live_url}/fulfil/")
    page.get_by_test_id(f"open-{order.number}").click()
    page.get_by_test_id("pick-scan").fill(coat.barcode)
    page.get_by_test_id("pick-scan").press("Enter")
    page.wait_for_selector('[data-testid="fulfil-message"]')
    page.get_by_test_id("pack").click()
    page.get_by_test_id("carrier").fill("UPS")
    page.get_by_test_id("tracking").fill("1Z999AA10123456784")
    page.get_by_test_id("ship").click()
    expect(page.get_by_test_id("fulfil-status")).to_have_text("Shipped")
    shipped = [m for m in mail.outbox if "on its way" in m.subject]
    assert shipped and "1Z999AA10123456784" in shipped[0].body

    # The store marks the collect line ready; the customer's code hands it over.
    sign_in_as(page, login, "associate")
    page.goto(f"{live_url}/pickups/")
    page.get_by_test_id(f"open-pickup-{order.number}").click()
    page.get_by_test_id("ready").click()
    page.wait_for_selector('[data-testid="collect-code"]')
    ready_mail = next(m for m in mail.outbox if "ready to collect" in m.subject)
    code = re.search(r"collection code: (\d{6})", ready_mail.body).group(1)
    page.get_by_test_id("collect-code").fill(code)
    page.get_by_test_id("collect").click()
    expect(page.get_by_test_id("fulfil-status")).to_have_text("Collected")
    collect_fulfilment = Fulfilment.objects.get(order=order, kind=FulfilmentKind.COLLECT)
    assert collect_fulfilment.status == Status.COLLECTED

    # A return at another store: the tee goes back on the shelf there.
    sign_in_as(page, login, "other-manager")
    page.goto(f"{live_url}/returns/")
    page.get_by_test_id("return-lookup").fill(order.number)
    page.get_by_test_id("return-lookup").press("Enter")
    page.locator(f'[data-testid="return-line-{tee.sku}"] [data-testid="return-qty"]').select_option("1")
    page.get_by_test_id("return-submit").click()
    page.wait_for_selector('[data-testid="return-done"]')
    assert "Refund 20.00" in page.get_by_test_id("return-done").inner_text()
    assert StockLevel.objects.get(location=other_store, variant=tee).on_hand == 1
    order.refresh_from_db()
    assert order.refunded_total == Decimal("20.00")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024


def test_what_is_typed_while_the_cart_updates_is_kept(page, login, live_url, shop, associate):
    """The scan field is emptied after an item goes in, unless the associate has typed since.

    A long settle makes the window between the cart's swap and its settle wide enough to type in.
    """
    coat, scarf = shop["coat"], shop["scarf"]
    login(page, "associate")
    page.goto(f"{live_url}/sell/")
    page.evaluate("htmx.config.defaultSettleDelay = 1500")

    add_by_search(page, "Wool", "ship", coat.sku)  # returns once the line is swapped in
    assert page.locator("#sale-lines.htmx-settling").count() == 1  # not settled yet
    page.get_by_test_id("scan-input").fill("Silk")
    page.locator("#sale-lines:not(.htmx-settling)").wait_for()

    expect(page.get_by_test_id("scan-input")).to_have_value("Silk")
    expect(page.get_by_test_id(f"add-collect-{scarf.sku}")).to_be_visible()

    # Nothing typed meanwhile: the field is emptied for the next scan, and keeps the focus.
    page.get_by_test_id(f"add-collect-{scarf.sku}").click()
    expect(page.get_by_test_id("scan-input")).to_have_value("", timeout=5000)
    expect(page.get_by_test_id("scan-input")).to_be_focused()
