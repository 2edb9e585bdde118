"""The orders API: idempotent placement, role and location checks, fulfilment actions, schema."""

import pytest

from omni.roles import Role
from orders.models import Fulfilment, Order, Payment
from tests.factories import UserFactory
from tests.factories.orders import give_stock

pytestmark = pytest.mark.django_db


def body(network, variant, **extra):
    return {
        "location_id": network["store"].pk,
        "lines": [{"sku": variant.sku, "quantity": 1}],
        "tenders": [{"tender": "card", "amount": "49.00", "card_last4": "4242", "terminal_ref": "T-1"}],
        **extra,
    }


def test_place_needs_an_idempotency_key(network, variant, associate, api_client_for):
    response = api_client_for(associate).post("/api/v1/orders/", body(network, variant), format="json")

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]


def test_place_then_repeat_returns_the_same_order(network, variant, associate, api_client_for):
    give_stock(network["store"], variant, 2)
    client = api_client_for(associate)

    first = client.post("/api/v1/orders/", body(network, variant), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/orders/", body(network, variant), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == 201, first.json()
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert first.json()["number"] == again.json()["number"]
    assert first.json()["lines"][0]["tax_amount"] == "3.73"
    assert Order.objects.count() == 1 and Payment.objects.count() == 1


def test_endless_aisle_ship_line_with_customer_and_address(network, variant, associate, customer, api_client_for):
    give_stock(network["warehouse"], variant, 2)
    payload = body(
        network,
        variant,
        customer_id=customer.pk,
        ship_to={"name": "Ada", "line1": "1 Main St", "city": "Austin", "postcode": "78701"},
    )
    payload["lines"][0]["fulfilment"] = "ship"

    response = api_client_for(associate).post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["channel"] == "endless_aisle"
    assert data["fulfilments"][0]["source_location_id"] == network["warehouse"].pk
    assert Order.objects.get().contact_email == "ada@example.com"


def test_out_of_stock_is_a_409_saying_where_else(network, variant, associate, customer, api_client_for):
    give_stock(network["other"], variant, 1)
    payload = body(
        network, variant, customer_id=customer.pk, ship_to={"line1": "1 Main St", "city": "Austin", "postcode": "78701"}
    )
    payload["lines"][0].update(fulfilment="ship", quantity=3)
    payload["tenders"][0]["amount"] = "147.00"

    response = api_client_for(associate).post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    assert response.status_code == 409
    assert "Austin Domain (1)" in response.json()["message"]


def test_bad_line_is_a_400_naming_the_line(network, variant, associate, api_client_for):
    payload = body(network, variant)
    payload["lines"].append({"sku": variant.sku, "quantity": 0})

    response = api_client_for(associate).post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-4")

    assert response.status_code == 400
    assert response.json()["message"].startswith("Line 2: quantity")


@pytest.mark.parametrize("amount", ["1e30", "-5", "NaN", "12.345"])
def test_a_tender_amount_that_is_no_money_is_a_400(network, variant, associate, api_client_for, amount):
    # "1e30" was a 500: Decimal.quantize raised past the context's precision.
    payload = body(network, variant)
    payload["tenders"][0]["amount"] = amount

    response = api_client_for(associate).post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-m")

    assert response.status_code == 400 and "amount" in response.json()["message"]


def test_cannot_sell_for_another_store(network, variant, other_manager, api_client_for):
    response = api_client_for(other_manager).post(
        "/api/v1/orders/", body(network, variant), format="json", HTTP_IDEMPOTENCY_KEY="k-5"
    )

    assert response.status_code == 403


def test_warehouse_operator_cannot_place(network, variant, warehouse_operator, api_client_for):
    response = api_client_for(warehouse_operator).post(
        "/api/v1/orders/",
        body(network, variant, location_id=network["warehouse"].pk),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-6",
    )

    assert response.status_code == 403


def test_list_and_detail_are_scoped_to_your_locations(
    network, variant, associate, other_manager, api_client_for, django_assert_max_num_queries
):
    give_stock(network["store"], variant, 3)
    client = api_client_for(associate)
    for key in ("a", "b"):
        client.post("/api/v1/orders/", body(network, variant), format="json", HTTP_IDEMPOTENCY_KEY=key)
    number = Order.objects.first().number

    with django_assert_max_num_queries(4):
        listed = client.get("/api/v1/orders/")
    detail = client.get(f"/api/v1/orders/{number}/")
    hidden = api_client_for(other_manager).get(f"/api/v1/orders/{number}/")

    assert len(listed.json()) == 2
    assert detail.status_code == 200 and detail.json()["events"][0]["kind"] == "placed"
    assert hidden.status_code == 404
    assert api_client_for(other_manager).get("/api/v1/orders/").json() == []


def test_a_search_with_a_non_ascii_digit_finds_nothing_instead_of_failing(network, variant, associate, api_client_for):
    # '³'.isdigit() is True but int('³') raises: the order-number parser took it for a number (a 500).
    give_stock(network["store"], variant, 1)
    client = api_client_for(associate)
    client.post("/api/v1/orders/", body(network, variant), format="json", HTTP_IDEMPOTENCY_KEY="k")

    response = client.get("/api/v1/orders/", {"q": "³"})
    assert (response.status_code, response.json()) == (200, [])
    assert len(client.get("/api/v1/orders/", {"q": f"SO-{Order.objects.get().pk}"}).json()) == 1


def test_warehouse_picks_packs_and_ships_through_the_api(
    network, variant, associate, customer, warehouse_operator, api_client_for
):
    give_stock(network["warehouse"], variant, 1)
    payload = body(
        network, variant, customer_id=customer.pk, ship_to={"line1": "1 Main St", "city": "Austin", "postcode": "78701"}
    )
    payload["lines"][0]["fulfilment"] = "ship"
    api_client_for(associate).post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-7")
    fulfilment = Fulfilment.objects.get()
    client = api_client_for(warehouse_operator)

    queue = client.get(f"/api/v1/fulfilments/?location_id={network['warehouse'].pk}").json()
    picked = client.post(f"/api/v1/fulfilments/{fulfilment.pk}/pick/", {"code": variant.barcode}, format="json")
    packed = client.post(f"/api/v1/fulfilments/{fulfilment.pk}/pack/")
    shipped = client.post(
        f"/api/v1/fulfilments/{fulfilment.pk}/ship/", {"carrier": "UPS", "tracking_number": "1Z1"}, format="json"
    )

    assert [f["id"] for f in queue["to_ship"]] == [fulfilment.pk]
    assert picked.json()["complete"] is True
    assert packed.json()["status"] == "packed"
    assert shipped.json()["status"] == "shipped" and shipped.json()["tracking_number"] == "1Z1"
    # A store associate of another store cannot act on the warehouse's work.
    outsider = UserFactory(username="outsider", role=Role.ASSOCIATE, home_location=network["other"])
    denied = api_client_for(outsider).post(f"/api/v1/fulfilments/{fulfilment.pk}/deliver/")
    assert denied.status_code == 403


def test_cancel_and_return_through_the_api(network, variant, associate, customer, other_manager, api_client_for):
    give_stock(network["store"], variant, 1)
    response = api_client_for(associate).post(
        "/api/v1/orders/", body(network, variant), format="json", HTTP_IDEMPOTENCY_KEY="k-8"
    )
    number, line_id = response.json()["number"], response.json()["lines"][0]["id"]

    cancel = api_client_for(associate).post(f"/api/v1/orders/{number}/cancel/", {}, format="json")
    returned = api_client_for(other_manager).post(
        f"/api/v1/orders/{number}/returns/",
        {"location_id": network["other"].pk, "lines": [{"line_id": line_id, "quantity": 1}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="ret-8",
    )

    assert cancel.status_code == 409  # a take-now sale is returned, not cancelled
    assert returned.status_code == 201, returned.json()
    assert returned.json()["status"] == "returned"
    assert returned.json()["refunded_total"] == "49.00"


def test_the_schema_lists_the_orders_endpoints(admin_user, api_client_for):
    schema = api_client_for(admin_user).get("/api/schema/?format=json").json()

    paths = schema["paths"]
    assert "post" in paths["/api/v1/orders/"] and "get" in paths["/api/v1/orders/"]
    assert {"/api/v1/fulfilments/{fulfilment_id}/ship/", "/api/v1/orders/{number}/returns/"} <= set(paths)
    params = {p["name"] for p in paths["/api/v1/orders/"]["post"]["parameters"]}
    assert "Idempotency-Key" in params
