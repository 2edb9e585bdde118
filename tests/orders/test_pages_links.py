"""What the orders pages offer: only links the user may follow, and the facts each screen needs
(the customer at a pickup handover, the delivery address of an order that ships)."""

import re

import pytest

from orders.models import Cart, Fulfilment
from tests.factories.orders import collect, draft, give_stock, place, ship, take_now

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _links(body: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', body))


def test_the_warehouse_operator_is_not_offered_store_only_screens(
    client, associate, warehouse_operator, variant, network, customer
):
    give_stock(network["warehouse"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)])).order
    client.force_login(warehouse_operator)

    orders = client.get("/orders/").content.decode()
    fulfil = client.get("/fulfil/").content.decode()
    receipt = client.get(f"/orders/{order.number}/receipt/").content.decode()
    detail = client.get(f"/orders/{order.number}/").content.decode()

    # /sell/, /pickups/, /returns/ and emailing a receipt are store staff's (403 for this user).
    assert "/sell/" not in _links(orders) and "/sell/" not in _links(receipt)
    assert "/pickups/" not in _links(fulfil)
    assert not any(link.startswith("/returns/") for link in _links(detail))
    assert "/receipt/email/" not in receipt
    assert client.get("/pickups/").status_code == 403


def test_store_staff_are_offered_the_sale_and_pickups(client, associate, network):
    client.force_login(associate)

    assert "/sell/" in _links(client.get("/orders/").content.decode())
    assert "/pickups/" in _links(client.get("/fulfil/").content.decode())


def test_an_order_page_links_a_fulfilment_only_where_the_user_may_open_it(
    client, associate, warehouse_operator, variant, network, customer
):
    give_stock(network["warehouse"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    url = f"/fulfil/{fulfilment.pk}/"

    client.force_login(associate)
    as_associate = client.get(f"/orders/{order.number}/").content.decode()
    refused = client.get(url).status_code
    client.force_login(warehouse_operator)
    as_warehouse = client.get(f"/orders/{order.number}/").content.decode()

    assert refused == 403 and url not in _links(as_associate)  # shipped from the warehouse
    assert url in _links(as_warehouse)


def test_the_customer_history_links_only_orders_the_user_may_open(
    client, associate, other_manager, variant, network, customer
):
    give_stock(network["store"], variant, 1)
    give_stock(network["other"], variant, 1)
    here = place(associate, draft(location=network["store"], customer=customer, lines=[take_now(variant)])).order
    there = place(other_manager, draft(location=network["other"], customer=customer, lines=[take_now(variant)])).order
    client.force_login(associate)

    body = client.get(f"/orders/customer/{customer.pk}/history/", **HX).content.decode()

    assert client.get(f"/orders/{there.number}/").status_code == 404  # sold at another store
    assert f"/orders/{here.number}/" in _links(body)
    assert f"/orders/{there.number}/" not in _links(body) and there.number in body


def test_the_pickup_handover_names_the_customer_and_their_phone(client, associate, variant, network, customer):
    give_stock(network["store"], variant, 1)
    order_draft = draft(location=network["store"], customer=customer, lines=[collect(variant)])
    order_draft.contact_phone = "+15125550142"  # stored E.164, shown as other pages show phones
    order = place(associate, order_draft).order
    fulfilment = Fulfilment.objects.get(order=order)
    client.force_login(associate)

    body = client.get(f"/fulfil/{fulfilment.pk}/").content.decode()

    handover = body.split('data-testid="collect-customer"')[1].split("</p>")[0]
    assert "Ada Lovelace" in handover and "(512) 555-0142" in handover and 'href="tel:+15125550142"' in handover


def test_the_receipt_and_the_order_page_show_where_it_ships(client, associate, variant, network, customer):
    give_stock(network["warehouse"], variant, 1)
    give_stock(network["store"], variant, 1)
    shipped = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)])).order
    taken = place(associate, draft(location=network["store"], lines=[take_now(variant)])).order
    client.force_login(associate)

    for page in (f"/orders/{shipped.number}/receipt/", f"/orders/{shipped.number}/"):
        address = client.get(page).content.decode().split('data-testid="ship-to"')[1].split("</address>")[0]
        assert "1 Congress Ave" in address and "Austin, TX 78701" in address
    assert 'data-testid="ship-to"' not in client.get(f"/orders/{taken.number}/receipt/").content.decode()


def test_the_deliver_to_form_asks_for_the_state(client, associate, variant, network):
    give_stock(network["warehouse"], variant, 1)
    client.force_login(associate)

    body = client.post("/sell/add/", {"variant_id": variant.pk, "kind": "ship"}, **HX).content.decode()
    saved = client.post("/sell/address/", {"ship_line1": "1 Main St", "ship_region": "TX"}, **HX)

    region = re.search(r"<input[^>]*name=\"ship_region\"[^>]*>", body).group(0)
    assert 'type="hidden"' not in region and 'placeholder="State"' in region
    assert saved.status_code == 204 and Cart.objects.get().ship_region == "TX"
