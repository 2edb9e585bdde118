"""Locations, a location's stock, and the ledger: filters, cursor pages, fixed query counts."""

import pytest
from django.utils import timezone

from inventory import services
from inventory.models import StockLevel
from tests.factories import LocationFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db
SYSTEM = services.SystemActor("test")


def all_pages(client, url, params=None):
    """Follow `next` links; return every row and the number of pages."""
    rows, pages = [], 0
    response = client.get(url, params or {})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        pages += 1
        if not body["next"]:
            return rows, pages
        response = client.get(body["next"])


# --- Locations ---------------------------------------------------------------------------------


def test_locations_lists_active_ones_in_two_queries(
    store, other_store, warehouse, associate, api_client_for, django_assert_num_queries
):
    LocationFactory(code="closed", is_active=False)
    client = api_client_for(associate)

    with django_assert_num_queries(2):
        response = client.get("/api/v1/locations/")

    assert response.status_code == 200
    assert [row["code"] for row in response.json()] == ["aus-1", "aus-2", "wh-1"]
    assert response.json()[2]["kind"] == "warehouse"


# --- Stock at a location -----------------------------------------------------------------------


def test_location_stock_pages_through_every_level_in_sku_order(
    store, associate, api_client_for, stock, django_assert_num_queries
):
    for number in range(7):
        stock(store, VariantFactory(sku=f"SKU-{number:02d}"), number + 1)
    client = api_client_for(associate)

    with django_assert_num_queries(3):  # token + roles, the location, the page
        first = client.get("/api/v1/locations/aus-1/stock/", {"page_size": 3})

    assert [row["sku"] for row in first.json()["results"]] == ["SKU-00", "SKU-01", "SKU-02"]
    rows, pages = all_pages(client, "/api/v1/locations/aus-1/stock/", {"page_size": 3})
    assert [row["sku"] for row in rows] == [f"SKU-{n:02d}" for n in range(7)]
    assert pages == 3
    assert rows[6]["on_hand"] == 7
    assert set(rows[0]) >= {"barcode", "product_name", "available", "needs_count", "safety_stock"}


def test_location_stock_query_count_does_not_grow_with_rows(
    store, associate, api_client_for, stock, django_assert_num_queries
):
    for number in range(40):
        stock(store, VariantFactory(), number + 1)
    client = api_client_for(associate)

    with django_assert_num_queries(3):
        response = client.get("/api/v1/locations/aus-1/stock/")

    assert len(response.json()["results"]) == 40


def test_location_stock_filters(store, other_store, associate, api_client_for, stock):
    shoes = ProductFactory(category="shoes", brand="Acme")
    tops = ProductFactory(category="tops", brand="Northwind")
    stock(store, VariantFactory(sku="SHO-1", product=shoes), 1)
    stock(store, VariantFactory(sku="SHO-2", product=shoes), 10)
    stock(store, VariantFactory(sku="TOP-1", product=tops), 2)
    stock(other_store, VariantFactory(sku="SHO-3", product=shoes), 1)
    StockLevel.objects.filter(variant__sku="TOP-1").update(needs_count=True)
    client = api_client_for(associate)

    def skus(**params):
        response = client.get("/api/v1/locations/aus-1/stock/", params)
        assert response.status_code == 200, response.content
        return [row["sku"] for row in response.json()["results"]]

    assert skus() == ["SHO-1", "SHO-2", "TOP-1"]
    assert skus(sku="SHO") == ["SHO-1", "SHO-2"]
    assert skus(category="tops") == ["TOP-1"]
    assert skus(brand="Acme") == ["SHO-1", "SHO-2"]
    assert skus(below=3) == ["SHO-1", "TOP-1"]
    assert skus(needs_count="true") == ["TOP-1"]
    assert skus(needs_count="false", below=5) == ["SHO-1"]


def test_location_stock_low_filter_reads_available_not_on_hand(store, associate, api_client_for, stock):
    variant = VariantFactory()
    stock(store, variant, 10)
    services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=9)

    response = api_client_for(associate).get("/api/v1/locations/aus-1/stock/", {"below": 2})

    assert [row["available"] for row in response.json()["results"]] == [1]


def test_location_stock_bad_filters_are_400(store, associate, api_client_for):
    response = api_client_for(associate).get("/api/v1/locations/aus-1/stock/", {"below": "few"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_location_stock_of_unknown_location_is_404(store, associate, api_client_for):
    response = api_client_for(associate).get("/api/v1/locations/nowhere/stock/")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_location"


def test_a_garbled_cursor_is_404_not_500(store, associate, api_client_for):
    response = api_client_for(associate).get("/api/v1/locations/aus-1/stock/", {"cursor": "garbage"})

    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "extra"}


def test_stock_of_another_store_is_readable_by_staff(store, other_store, associate, api_client_for, stock):
    stock(other_store, VariantFactory(sku="X-1"), 2)

    response = api_client_for(associate).get("/api/v1/locations/aus-2/stock/")

    assert [row["sku"] for row in response.json()["results"]] == ["X-1"]


# --- Ledger ------------------------------------------------------------------------------------


def test_ledger_lists_movements_newest_first_with_filters(store, manager, api_client_for, stock):
    shirt, socks = VariantFactory(sku="SHIRT"), VariantFactory(sku="SOCKS")
    stock(store, shirt, 5)
    stock(store, socks, 2)
    services.stock_adjust(actor=manager, location_id=store.pk, variant_id=shirt.pk, delta=-1, reason_code="shrinkage")
    client = api_client_for(manager)

    everything = client.get("/api/v1/ledger/").json()["results"]
    by_sku = client.get("/api/v1/ledger/", {"sku": "SHIRT"}).json()["results"]
    by_reason = client.get("/api/v1/ledger/", {"reason": "adjustment"}).json()["results"]
    by_location = client.get("/api/v1/ledger/", {"location": "aus-1"}).json()["results"]

    assert [(row["sku"], row["quantity"], row["reason"]) for row in everything] == [
        ("SHIRT", -1, "adjustment"),
        ("SOCKS", 2, "receipt"),
        ("SHIRT", 5, "receipt"),
    ]
    assert [row["quantity"] for row in by_sku] == [-1, 5]
    assert [(row["reason_code"], row["actor_label"]) for row in by_reason] == [("shrinkage", "manager")]
    assert len(by_location) == 3
    assert everything[0]["location_code"] == "aus-1"


def test_ledger_since_filter(store, manager, api_client_for, stock):
    variant = VariantFactory()
    stock(store, variant, 5)
    since = timezone.now().isoformat()
    stock(store, variant, 1)

    response = api_client_for(manager).get("/api/v1/ledger/", {"since": since})

    assert [row["quantity"] for row in response.json()["results"]] == [1]


def test_ledger_pages_with_a_cursor_in_a_fixed_number_of_queries(
    store, manager, api_client_for, stock, django_assert_num_queries
):
    variant = VariantFactory()
    for _ in range(9):
        stock(store, variant, 1)
    client = api_client_for(manager)

    with django_assert_num_queries(2):  # the token with roles and locations, the page
        first = client.get("/api/v1/ledger/", {"page_size": 4})
    with django_assert_num_queries(3):  # ... and the location named in the filter
        client.get("/api/v1/ledger/", {"page_size": 4, "location": "aus-1"})

    assert len(first.json()["results"]) == 4
    rows, pages = all_pages(client, "/api/v1/ledger/", {"page_size": 4})
    assert len(rows) == 9
    assert len({row["id"] for row in rows}) == 9
    assert pages == 3


def test_ledger_shows_only_the_readers_locations(store, other_store, manager, api_client_for, stock):
    variant = VariantFactory()
    stock(store, variant, 1)
    stock(other_store, variant, 2)

    rows = api_client_for(manager).get("/api/v1/ledger/").json()["results"]

    assert [row["location_code"] for row in rows] == ["aus-1"]


def test_ledger_of_another_location_is_forbidden(store, other_store, manager, api_client_for):
    response = api_client_for(manager).get("/api/v1/ledger/", {"location": "aus-2"})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_location"


def test_admin_sees_the_whole_ledger(store, other_store, admin_user, api_client_for, stock):
    variant = VariantFactory()
    stock(store, variant, 1)
    stock(other_store, variant, 2)

    rows = api_client_for(admin_user).get("/api/v1/ledger/").json()["results"]

    assert {row["location_code"] for row in rows} == {"aus-1", "aus-2"}


def test_associates_do_not_read_the_ledger(store, associate, api_client_for):
    response = api_client_for(associate).get("/api/v1/ledger/")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_role"


@pytest.mark.parametrize(
    ("params", "status"),
    [({"reason": "theft"}, 400), ({"since": "yesterday"}, 400), ({"location": "nowhere"}, 404)],
)
def test_ledger_bad_filters_are_4xx(store, manager, api_client_for, params, status):
    response = api_client_for(manager).get("/api/v1/ledger/", params)

    assert response.status_code == status
    assert set(response.json()) == {"code", "message", "extra"}
