"""GET /api/v1/availability/: one variant's stock at every active location, in two queries."""

import pytest

from inventory import services
from inventory.models import StockLevel
from tests.factories import LocationFactory, VariantFactory
from tests.factories.inventory import WarehouseFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/availability/"
SYSTEM = services.SystemActor("test")


def test_lists_every_active_location_with_states_and_totals(store, other_store, associate, api_client_for, stock):
    variant = VariantFactory(sku="TEE-BLK-M")
    stock(store, variant, 5)
    services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)
    LocationFactory(code="closed", is_active=False)

    response = api_client_for(associate).get(URL, {"sku": "TEE-BLK-M"})

    assert response.status_code == 200
    body = response.json()
    assert body["variant"]["sku"] == "TEE-BLK-M"
    assert body["variant"]["barcode"] == variant.barcode
    assert [row["code"] for row in body["locations"]] == ["aus-1", "aus-2"]
    here, there = body["locations"]
    assert (here["on_hand"], here["reserved"], here["available"], here["available_raw"]) == (5, 2, 3, 3)
    assert (there["on_hand"], there["available"]) == (0, 0)  # no level row yet: zeros, not missing
    assert body["totals"]["on_hand"] == 5
    assert body["totals"]["reserved"] == 2
    assert body["totals"]["available"] == 3


def test_available_is_clamped_for_display_and_raw_keeps_the_shortfall(
    store, other_store, associate, api_client_for, stock
):
    variant = VariantFactory()
    stock(store, variant, 2)
    stock(other_store, variant, 4)
    services.stock_set_safety(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, safety_stock=3)

    body = api_client_for(associate).get(URL, {"sku": variant.sku}).json()

    here = body["locations"][0]
    assert (here["available"], here["available_raw"], here["safety_stock"]) == (0, -1, 3)
    # a shortfall at one store does not reduce what another can sell
    assert body["totals"]["available"] == 4


def test_lookup_by_barcode(store, associate, api_client_for, stock):
    variant = VariantFactory()
    stock(store, variant, 1)

    response = api_client_for(associate).get(URL, {"barcode": variant.barcode})

    assert response.status_code == 200
    assert response.json()["variant"]["sku"] == variant.sku


def test_costs_two_queries_whatever_the_number_of_locations(
    store, associate, api_client_for, stock, django_assert_num_queries
):
    variant = VariantFactory()
    for _ in range(12):
        stock(LocationFactory(), variant, 3)
    stock(WarehouseFactory(), variant, 30)
    client = api_client_for(associate)

    with django_assert_num_queries(2):  # the token with its user and roles; the stock
        response = client.get(URL, {"sku": variant.sku})

    assert response.status_code == 200
    assert len(response.json()["locations"]) == 14
    assert response.json()["totals"]["on_hand"] == 66


def test_unknown_sku_is_404_with_a_stable_code(store, associate, api_client_for):
    response = api_client_for(associate).get(URL, {"sku": "NOPE"})

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_variant"
    assert "NOPE" in response.json()["message"]


def test_unknown_but_valid_barcode_is_404(store, associate, api_client_for):
    response = api_client_for(associate).get(URL, {"barcode": "4006381333931"})

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_variant"


def test_barcode_with_wrong_check_digit_is_400(store, associate, api_client_for):
    response = api_client_for(associate).get(URL, {"barcode": "4006381333932"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_barcode"
    assert "check digit" in response.json()["message"]


@pytest.mark.parametrize("params", [{}, {"sku": "A", "barcode": "4006381333931"}, {"sku": ""}])
def test_both_or_neither_parameter_is_400(store, associate, api_client_for, params):
    response = api_client_for(associate).get(URL, params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_needs_a_signed_in_member_of_staff(store, client):
    response = client.get(URL, {"sku": "X"})

    assert response.status_code in (401, 403)
    assert set(response.json()) == {"code", "message", "extra"}


def test_a_user_with_no_role_is_refused(store, api_client_for):
    from tests.factories import UserFactory

    response = api_client_for(UserFactory(home_location=store)).get(URL, {"sku": "X"})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_role"


def test_the_json_built_by_the_database_equals_the_python_answer(store, other_store, stock):
    import json

    from inventory import selectors

    variant = VariantFactory(price="19.90")
    stock(store, variant, 4)
    services.stock_set_safety(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, safety_stock=5)
    stock(other_store, variant, 3)
    services.stock_reserve(actor=SYSTEM, location_id=other_store.pk, variant_id=variant.pk, quantity=1)
    StockLevel.objects.filter(location=other_store).update(needs_count=True)

    for lookup in ({"sku": variant.sku}, {"barcode": variant.barcode}):
        document = json.loads(selectors.variant_availability_json(**lookup))
        assert document == selectors.variant_availability(**lookup)
    assert document["variant"]["price"] == "19.90"
    assert [row["available_raw"] for row in document["locations"]] == [-1, 2]
    assert document["totals"]["available"] == 2
