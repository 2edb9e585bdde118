"""The orders pages: the sale on the tablet, receipt, orders, fulfilment, pickups, returns."""

from datetime import UTC
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from inventory.models import Location
from orders import emails
from orders.models import Cart, CartLine, Fulfilment, Order, Status
from tests.factories import VariantFactory
from tests.factories.orders import card, collect, draft, give_stock, place, ship, take_now

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def signed_in(client, associate, network):
    client.force_login(associate)
    return client


def test_sell_page_renders_with_an_empty_cart(signed_in):
    response = signed_in.get("/sell/")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="cart-empty"' in body
    # The customer picker comes with the page (nothing to load before a search can be typed).
    assert 'id="picker-sale-customer"' in body
    assert 'data-testid="picker-search"' in body


def test_scan_adds_a_take_now_line_and_answers_the_fragment(signed_in, variant, network):
    response = signed_in.post("/sell/scan/", {"code": variant.barcode}, **HX)

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="sale-lines"')
    assert 'hx-swap-oob="true"' in body  # the pay panel follows
    assert "<html" not in body
    assert CartLine.objects.get().variant_id == variant.pk


def test_unknown_scan_says_so_in_place(signed_in):
    response = signed_in.post("/sell/scan/", {"code": "nope"}, **HX)

    assert response.status_code == 400
    assert "No product with barcode or SKU" in response.content.decode()


def test_search_by_name_offers_the_three_fulfilments(signed_in, variant):
    response = signed_in.get("/sell/search/", {"code": variant.product.name[:6]}, **HX)

    body = response.content.decode()
    assert f'data-testid="add-ship-{variant.sku}"' in body
    assert f'data-testid="add-collect-{variant.sku}"' in body


def test_search_shows_what_is_here_and_elsewhere_before_choosing(signed_in, variant, network):
    give_stock(network["store"], variant, 2)
    give_stock(network["warehouse"], variant, 5)
    give_stock(network["other"], variant, 3)
    Location.objects.filter(pk=network["other"].pk).update(is_active=False)  # closed: not a source
    away = VariantFactory(product=variant.product, size="XS")
    give_stock(network["warehouse"], away, 4)

    body = signed_in.get("/sell/search/", {"code": variant.product.name[:6]}, **HX).content.decode()

    assert f'data-testid="stock-{variant.sku}">2 here · 5 elsewhere<' in body
    assert f'is-none-here" data-testid="stock-{away.sku}">0 here · 4 elsewhere<' in body


def test_a_take_now_line_says_when_the_record_shows_too_few_here(signed_in, variant, network):
    # The customer holds the item, so the sale goes through (found stock); the line says so first.
    give_stock(network["store"], variant, 1)
    signed_in.post("/sell/scan/", {"code": variant.barcode}, **HX)

    one = signed_in.post("/sell/scan/", {"code": variant.barcode}, **HX).content.decode()  # now 2 in the cart

    assert "only 1 on record here: the sale will ask for a count" in one
    give_stock(network["store"], variant, 1)
    assert "on record here" not in signed_in.get("/sell/").content.decode()


def test_ship_line_shows_source_and_eta(signed_in, variant, network):
    give_stock(network["warehouse"], variant, 2)

    response = signed_in.post("/sell/add/", {"variant_id": variant.pk, "kind": "ship"}, **HX)

    body = response.content.decode()
    assert "Ships from Central Warehouse" in body and "arrives by" in body and "Held until" in body
    assert "need a customer" in body


def test_out_of_stock_add_is_a_409_with_where_else(signed_in, variant, network):
    give_stock(network["far"], variant, 1)

    response = signed_in.post("/sell/add/", {"variant_id": variant.pk, "kind": "ship", "quantity": "3"}, **HX)

    assert response.status_code == 409
    assert "Dallas Uptown (1)" in response.content.decode()


def test_a_big_discount_asks_for_a_manager_then_accepts_their_credentials(signed_in, variant, manager):
    signed_in.post("/sell/scan/", {"code": variant.sku}, **HX)
    line = CartLine.objects.get()

    asked = signed_in.post(
        f"/sell/line/{line.pk}/discount/", {"discount_kind": "percent", "discount_value": "50"}, **HX
    )
    approved = signed_in.post(
        f"/sell/line/{line.pk}/discount/",
        {
            "discount_kind": "percent",
            "discount_value": "50",
            "manager_username": "manager",
            "manager_password": "correct-horse-battery",
        },
        **HX,
    )

    assert asked.status_code == 422 and 'data-testid="approval"' in asked.content.decode()
    assert approved.status_code == 200
    line.refresh_from_db()
    assert (line.discount_value, line.discount_approved_by) == (Decimal("50.00"), manager)


def test_checkout_with_split_tenders_redirects_to_the_receipt(signed_in, variant, network):
    give_stock(network["store"], variant, 2)
    signed_in.post("/sell/scan/", {"code": variant.sku}, **HX)
    signed_in.post("/sell/scan/", {"code": variant.sku}, **HX)
    key = Cart.objects.get().checkout_key

    response = signed_in.post(
        "/sell/checkout/",
        {
            "checkout_key": key,
            "card_amount": "50.00",
            "card_ref": "A1",
            "card_last4": "4242",
            "cash_amount": "48.00",
            "cash_tendered": "50",
        },
        **HX,
    )
    again = signed_in.post("/sell/checkout/", {"checkout_key": key}, **HX)

    order = Order.objects.get()
    assert response["HX-Redirect"] == f"/orders/{order.number}/receipt/"
    assert again["HX-Redirect"] == response["HX-Redirect"]
    receipt = signed_in.get(response["HX-Redirect"]).content.decode()
    assert "98.00" in receipt and "Tax included" in receipt and "7.47" in receipt
    assert "ending 4242" in receipt and "change 2.00" in receipt


def test_checkout_error_stays_on_the_pay_panel(signed_in, variant, network):
    signed_in.post("/sell/scan/", {"code": variant.sku}, **HX)
    key = Cart.objects.get().checkout_key

    response = signed_in.post(
        "/sell/checkout/", {"checkout_key": key, "card_amount": "10.00", "card_ref": "A1", "card_last4": "4242"}, **HX
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-testid="checkout-error"' in body and "49.00" in body
    assert 'value="10.00"' in body  # what was typed is kept
    assert not Order.objects.exists()


def test_email_receipt(signed_in, variant, network, associate, eager_celery):
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], lines=[take_now(variant)])).order

    response = signed_in.post(f"/orders/{order.number}/receipt/email/", {"email": "me@example.com"}, **HX)

    assert response.status_code == 200
    assert mail.outbox[-1].to == ["me@example.com"] and order.number in mail.outbox[-1].subject


def test_the_receipt_names_who_served_by_first_name(signed_in, variant, network, associate):
    type(associate).objects.filter(pk=associate.pk).update(first_name="Sam")
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], lines=[take_now(variant)])).order

    page = signed_in.get(f"/orders/{order.number}/receipt/").content.decode()

    assert "served by Sam" in page and f"served by {associate.username}" not in page


def _stamp(moment) -> str:
    """How pages and emails write a moment: 6 Dec 2026, 14:05."""
    return f"{moment.day} {moment:%b %Y, %H:%M}"


def test_the_receipt_on_screen_and_by_email_shows_the_stores_local_time(signed_in, variant, network, associate):
    store = network["store"]
    Location.objects.filter(pk=store.pk).update(time_zone="Europe/Berlin")
    give_stock(store, variant, 1)
    order = place(associate, draft(location=store, lines=[take_now(variant)])).order
    local = _stamp(order.placed_at.astimezone(ZoneInfo("Europe/Berlin")))
    utc = _stamp(order.placed_at.astimezone(UTC))

    # As the worker sends it: outside any request, so no page's time zone is active.
    emails.send_receipt(order_id=order.pk, email="me@example.com")

    assert local in mail.outbox[-1].body and utc not in mail.outbox[-1].body  # one or two hours apart
    assert local in signed_in.get(f"/orders/{order.number}/receipt/").content.decode()


def test_the_emailed_receipt_shows_a_refund_and_no_empty_discount(variant, network, associate):
    from orders import services
    from orders.services import ReturnInput

    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], lines=[take_now(variant)])).order
    services.order_return(
        actor=associate,
        order_id=order.pk,
        location_id=network["store"].pk,
        lines=[ReturnInput(order.lines.get().pk, 1)],
        idempotency_key="r",
    )

    emails.send_receipt(order_id=order.pk, email="me@example.com")

    body = mail.outbox[-1].body
    assert "Refunded: -49.00" in body and "Discounts" not in body
    assert "Refunded</td>" in mail.outbox[-1].alternatives[0][0]


def test_order_list_and_detail_with_timeline(signed_in, variant, network, associate, django_assert_max_num_queries):
    give_stock(network["store"], variant, 3)
    for _ in range(3):
        place(associate, draft(location=network["store"], lines=[take_now(variant)]))
    order = Order.objects.first()

    with django_assert_max_num_queries(12):
        listed = signed_in.get("/orders/")
    detail = signed_in.get(f"/orders/{order.number}/")

    assert listed.content.decode().count("/receipt/") == 0 and order.number in listed.content.decode()
    assert 'data-testid="timeline"' in detail.content.decode()
    assert "Order placed at Austin Downtown" in detail.content.decode()


def test_the_order_list_pages_instead_of_stopping_silently(signed_in, variant, network, associate, monkeypatch):
    # It showed the newest 100 and nothing said there were more.
    monkeypatch.setattr("orders.views.ORDERS_PER_PAGE", 2)
    give_stock(network["store"], variant, 5)
    numbers = [
        place(associate, draft(location=network["store"], lines=[take_now(variant)])).order.number for _ in range(5)
    ]

    pages = [signed_in.get("/orders/", {"page": page}).content.decode() for page in ("", "2", "3", "x", "³")]

    newest_first = numbers[::-1]
    for page, expected in zip(pages[:3], (newest_first[:2], newest_first[2:4], newest_first[4:]), strict=True):
        assert [n for n in numbers if f">{n}<" in page] == sorted(expected)
    assert 'data-testid="older-orders"' in pages[0] and "page=2" in pages[0]
    assert 'data-testid="newer-orders"' in pages[2] and 'data-testid="older-orders"' not in pages[2]
    for bad in pages[3:]:  # read as page 1
        assert [n for n in numbers if f">{n}<" in bad] == sorted(newest_first[:2])


def test_fulfil_pick_pack_ship_pages(client, warehouse_operator, variant, network, associate, customer):
    give_stock(network["warehouse"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    client.force_login(warehouse_operator)

    queue = client.get("/fulfil/").content.decode()
    picked = client.post(f"/fulfil/{fulfilment.pk}/pick/", {"code": variant.barcode}, **HX)
    packed = client.post(f"/fulfil/{fulfilment.pk}/pack/", **HX)
    shipped = client.post(f"/fulfil/{fulfilment.pk}/ship/", {"carrier": "UPS", "tracking_number": "1Z9"}, **HX)
    slip = client.get(f"/fulfil/{fulfilment.pk}/packing-slip/").content.decode()
    pick_list = client.get(f"/fulfil/{fulfilment.pk}/pick-list/")

    assert f"ship-{order.number}" in queue
    assert "All picked" in picked.content.decode()
    assert packed.status_code == 200 and shipped.status_code == 200
    fulfilment.refresh_from_db()
    assert fulfilment.status == Status.SHIPPED
    assert "1 Congress Ave" in slip
    assert pick_list.status_code == 200


def test_a_wrong_pick_scan_shows_in_place(client, warehouse_operator, variant, network, associate, customer):
    give_stock(network["warehouse"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    client.force_login(warehouse_operator)

    response = client.post(f"/fulfil/{fulfilment.pk}/pick/", {"code": "999"}, **HX)

    assert response.status_code == 409
    assert "not on this pick list" in response.content.decode()


def test_another_stores_associate_cannot_ship(client, variant, network, associate, customer, other_manager):
    give_stock(network["warehouse"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    client.force_login(other_manager)

    response = client.post(f"/fulfil/{fulfilment.pk}/pick/", {"code": variant.sku}, **HX)

    assert response.status_code == 403


def test_pickup_ready_and_collect_pages(signed_in, variant, network, associate, customer):
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[collect(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)

    assert f"pickup-{order.number}" in signed_in.get("/pickups/").content.decode()
    ready = signed_in.post(f"/fulfil/{fulfilment.pk}/ready/", **HX)
    fulfilment.refresh_from_db()
    wrong = signed_in.post(
        f"/fulfil/{fulfilment.pk}/collect/", {"code": "000000" if fulfilment.collection_code != "000000" else "1"}, **HX
    )
    right = signed_in.post(f"/fulfil/{fulfilment.pk}/collect/", {"code": fulfilment.collection_code}, **HX)

    assert ready.status_code == 200
    assert wrong.status_code == 409 and "does not match" in wrong.content.decode()
    assert right.status_code == 200
    fulfilment.refresh_from_db()
    assert fulfilment.status == Status.COLLECTED


def test_return_at_another_store_page(client, variant, network, associate, other_manager):
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], lines=[take_now(variant)], tenders=[card("49.00")])).order
    line = order.lines.get()
    client.force_login(other_manager)

    found = client.get("/returns/", {"q": order.number})
    body = found.content.decode()
    key = body.split('name="return_key" value="')[1].split('"')[0]
    done = client.post(f"/returns/{order.number}/", {f"qty-{line.pk}": "1", "return_key": key}, **HX)

    assert f"return-line-{variant.sku}" in body
    assert done.status_code == 200 and "Refund 49.00" in done.content.decode()
    order.refresh_from_db()
    assert order.status == Status.RETURNED


def test_customer_history_fragment(signed_in, variant, network, associate, customer, django_assert_num_queries):
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[take_now(variant)])).order

    # session, user, current location, roles, the user's locations (which orders to link), merged records,
    # orders, fulfilments
    with django_assert_num_queries(8):
        response = signed_in.get(f"/orders/customer/{customer.pk}/history/", **HX)

    assert order.number in response.content.decode()
    assert "<html" not in response.content.decode()


def test_warehouse_operator_cannot_open_the_sale(client, warehouse_operator):
    client.force_login(warehouse_operator)

    assert client.get("/sell/").status_code == 403


def _count_queries(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_list_pages_cost_the_same_for_one_or_many_rows(
    client, warehouse_operator, variant, network, associate, customer
):
    give_stock(network["warehouse"], variant, 10)
    client.force_login(warehouse_operator)

    def order():
        place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)]))

    order()
    one = (_count_queries(client, "/fulfil/"), _count_queries(client, "/orders/"))
    for _ in range(3):
        order()
    many = (_count_queries(client, "/fulfil/"), _count_queries(client, "/orders/"))

    assert one == many


def test_card_without_last_four_digits_is_refused_by_the_terminal_adapter(signed_in, variant, network):
    signed_in.post("/sell/scan/", {"code": variant.sku}, **HX)
    key = Cart.objects.get().checkout_key

    response = signed_in.post("/sell/checkout/", {"checkout_key": key, "card_amount": "49.00", "card_ref": "A1"}, **HX)

    assert response.status_code == 400
    assert "last four digits" in response.content.decode()
    assert not Order.objects.exists()
