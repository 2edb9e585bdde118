"""Inventory tablet pages: search or scan, the product grid, the breakdown, low stock, the ledger."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from inventory import services
from inventory.models import Location, StockLevel, StockMovement
from omni.middleware import LOCATION_SESSION_KEY
from omni.models import LiveEvent
from omni.roles import Role
from tests.factories import LocationFactory, ProductFactory, UserFactory, VariantFactory
from tests.factories.inventory import WarehouseFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def receive(actor, location, variant, quantity):
    return services.stock_receive(actor=actor, location_id=location.pk, variant_id=variant.pk, quantity=quantity)


@pytest.fixture
def shirt():
    product = ProductFactory(name="Linen Shirt", style="LIN-100", brand="Northwind")
    sizes = ["L", "S", "XL", "M"]  # created out of order on purpose
    black = [VariantFactory(product=product, colour="Black", size=size, sku=f"LIN-100-BLK-{size}") for size in sizes]
    white = [VariantFactory(product=product, colour="White", size=size, sku=f"LIN-100-WHT-{size}") for size in sizes]
    return product, black, white


@pytest.fixture
def signed_in(client, associate):
    client.force_login(associate)
    return client


# --- Search or scan ------------------------------------------------------------------------------


def test_search_page_has_one_scan_field_with_live_results(signed_in):
    response = signed_in.get(reverse("inventory:search"))

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="scan-input"') == 1
    assert 'hx-trigger="input changed delay:250ms, search"' in html
    assert 'action="/stock/scan/"' in html
    assert "<script>" not in html  # CSP: no inline script


def test_typing_returns_only_the_results_fragment(signed_in, shirt):
    response = signed_in.get(reverse("inventory:search"), {"q": "linen"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="search-results"')
    assert "Linen Shirt" in html
    assert "<html" not in html


def test_search_by_sku_prefix_names_the_matching_variant(signed_in, shirt):
    response = signed_in.get(reverse("inventory:search"), {"q": "lin-100-wht-m"}, **HTMX)

    assert "LIN-100-WHT-M" in response.content.decode()


def test_search_ignores_one_letter(signed_in, shirt):
    response = signed_in.get(reverse("inventory:search"), {"q": "l"}, **HTMX)

    assert "Linen Shirt" not in response.content.decode()


def test_scanning_an_exact_barcode_goes_straight_to_the_product(signed_in, shirt):
    product, black, _ = shirt
    variant = black[2]

    response = signed_in.get(reverse("inventory:scan"), {"q": variant.barcode})

    assert response.status_code == 302
    assert response["Location"] == f"/stock/products/{product.pk}/?colour=Black&variant={variant.pk}"


def test_typing_an_exact_sku_in_lower_case_goes_to_the_product(signed_in, shirt):
    _product, _, white = shirt

    response = signed_in.get(reverse("inventory:scan"), {"q": "lin-100-wht-s"})

    assert response.status_code == 302
    assert f"variant={white[1].pk}" in response["Location"]


def test_an_unknown_barcode_says_so_on_the_search_page(signed_in, shirt):
    response = signed_in.get(reverse("inventory:scan"), {"q": "4006381333931"})

    assert response.status_code == 404
    assert b"No product has the barcode or SKU" in response.content
    assert b"4006381333931" in response.content


def test_a_name_entered_with_enter_shows_the_results(signed_in, shirt):
    VariantFactory(product=ProductFactory(name="Linen Trousers"))

    response = signed_in.get(reverse("inventory:scan"), {"q": "Linen"})

    assert response.status_code == 200
    assert b"Linen Shirt" in response.content
    assert b'data-testid="not-found"' not in response.content


def test_a_name_that_finds_one_product_opens_it(signed_in, shirt):
    product, _, _ = shirt

    response = signed_in.get(reverse("inventory:scan"), {"q": "linen shirt"})

    assert response.status_code == 302
    assert response["Location"].startswith(f"/stock/products/{product.pk}/")


def test_pages_need_sign_in(client):
    response = client.get(reverse("inventory:search"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_pages_need_a_stock_role(client, db, store):
    stranger = UserFactory(username="no-role", home_location=store)
    client.force_login(stranger)

    assert client.get(reverse("inventory:search")).status_code == 403
    assert client.get(reverse("inventory:low-stock")).status_code == 403


def test_pages_need_a_location(client, db):
    drifter = UserFactory(username="drifter", role=Role.ASSOCIATE, home_location=None)
    client.force_login(drifter)

    response = client.get(reverse("inventory:search"))

    assert response.status_code == 403
    assert b"not working for a location" in response.content


# --- Product grid --------------------------------------------------------------------------------


def test_product_grid_shows_available_by_size_and_location_nearest_first(signed_in, associate, shirt):
    product, black, _ = shirt
    here = associate.home_location  # Austin downtown (30.267, -97.743)
    far = LocationFactory(code="dal-1", name="Dallas", latitude=Decimal("32.7767"), longitude=Decimal("-96.7970"))
    near = LocationFactory(code="aus-3", name="Austin North", latitude=Decimal("30.40"), longitude=Decimal("-97.72"))
    nowhere = LocationFactory(code="pop-1", name="Pop-up", latitude=None, longitude=None)
    receive(associate, here, black[0], 4)  # L
    receive(associate, far, black[1], 7)  # S
    services.stock_reserve(actor=associate, location_id=here.pk, variant_id=black[0].pk, quantity=1)

    response = signed_in.get(reverse("inventory:product", args=[product.pk]), {"colour": "Black"})

    assert response.status_code == 200
    html = response.content.decode()
    # Columns in size order, whatever the creation order.
    positions = [html.index(f'<span class="grid-size">{size}</span>') for size in ("S", "M", "L", "XL")]
    assert positions == sorted(positions)
    # Rows: here, then by distance, then those without coordinates.
    rows = [
        html.index(f'<span class="grid-place-name">{name}</span>')
        for name in (here.name, near.name, far.name, nowhere.name)
    ]
    assert rows == sorted(rows)
    # Cells show available (4 on hand - 1 reserved).
    assert _cell(html, here.pk, black[0].pk) == "3"
    assert _cell(html, far.pk, black[1].pk) == "7"
    assert _cell(html, near.pk, black[0].pk) == "0"
    assert 'data-testid="grand-total">10<' in html


def test_product_grid_switches_colour(signed_in, associate, shirt):
    product, _black, white = shirt
    receive(associate, associate.home_location, white[3], 2)

    response = signed_in.get(reverse("inventory:product", args=[product.pk]), {"colour": "White"})

    html = response.content.decode()
    assert "LIN-100-WHT-M" in html and "LIN-100-BLK-M" not in html
    assert _cell(html, associate.home_location.pk, white[3].pk) == "2"
    assert 'aria-current="true">White</a>' in html
    assert "?colour=Black" in html  # the switcher links to the other colour


def test_product_page_subscribes_to_its_variants_live(signed_in, shirt):
    product, black, _ = shirt

    html = signed_in.get(reverse("inventory:product", args=[product.pk]), {"colour": "Black"}).content.decode()

    assert 'hx-ext="sse"' in html
    topics = "%2C".join(f"variant%3A{v.pk}" for v in sorted(black, key=lambda v: ["S", "M", "L", "XL"].index(v.size)))
    assert f'sse-connect="/live/stream/?topics={topics}&amp;since=' in html
    assert f"sse:stock-{black[0].pk}" in html


def test_product_grid_fragment_for_the_live_refresh(signed_in, associate, shirt):
    product, black, _ = shirt
    receive(associate, associate.home_location, black[3], 5)

    response = signed_in.get(reverse("inventory:product", args=[product.pk]), {"colour": "Black"}, **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="stock-grid"')
    assert "sse-connect" not in html and "<html" not in html
    assert _cell(html, associate.home_location.pk, black[3].pk) == "5"


def test_product_grid_costs_the_same_queries_for_any_number_of_sizes_and_locations(
    client, associate, django_assert_num_queries
):
    small = ProductFactory()
    for size in ("S", "M"):
        VariantFactory(product=small, size=size, colour="Red")
    big = ProductFactory()
    big_variants = [VariantFactory(product=big, size=str(size), colour="Red") for size in range(30, 50, 2)]
    client.force_login(associate)
    client.get(reverse("inventory:product", args=[small.pk]))  # warm the session
    for variant in big_variants[:3]:
        receive(associate, associate.home_location, variant, 1)

    with django_assert_num_queries(11) as small_page:
        client.get(reverse("inventory:product", args=[small.pk]))
    for n in range(8):
        LocationFactory(code=f"extra-{n}")
    with django_assert_num_queries(11) as big_page:
        response = client.get(reverse("inventory:product", args=[big.pk]))

    assert response.status_code == 200
    assert len(small_page.captured_queries) == len(big_page.captured_queries)


def test_product_grid_fragment_query_count_is_fixed(client, associate, django_assert_num_queries, shirt):
    product, _black, _ = shirt
    client.force_login(associate)
    for n in range(5):
        LocationFactory(code=f"more-{n}")

    with django_assert_num_queries(10):  # 5 for the session, user, location and roles; the live mark; 4 for the grid
        client.get(reverse("inventory:product", args=[product.pk]), **HTMX)


def test_an_unknown_product_is_404(signed_in):
    assert signed_in.get(reverse("inventory:product", args=[999999])).status_code == 404


# --- Breakdown -------------------------------------------------------------------------------------


def test_tapping_a_cell_shows_every_state(signed_in, associate, store, shirt):
    _, black, _ = shirt
    variant = black[0]
    receive(associate, store, variant, 10)
    services.stock_reserve(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=2)
    services.stock_commit(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=1)
    services.stock_mark_damaged(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=1)
    services.stock_set_safety(actor=associate, location_id=store.pk, variant_id=variant.pk, safety_stock=3)
    services.stock_expect(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=6)

    response = signed_in.get(reverse("inventory:level", args=[store.pk, variant.pk]), **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<aside id="level-detail"')
    for state, value in {
        "on_hand": 10,
        "committed": 1,
        "reserved": 2,
        "safety_stock": 3,
        "unavailable": 1,
        "incoming": 6,
    }.items():
        assert f'data-testid="detail-{state}">{value}<' in html
    assert 'data-testid="detail-available">3<' in html
    assert f'hx-trigger="sse:stock-{variant.pk}"' in html  # it refreshes itself live too
    latest = LiveEvent.objects.order_by("-pk").first()
    assert f'data-live-since="{latest.pk}"' in html  # ... and catches up if it arrives after a newer event


def test_a_cell_without_javascript_opens_the_page_with_the_breakdown(signed_in, associate, store, shirt):
    product, black, _ = shirt
    receive(associate, store, black[0], 2)

    response = signed_in.get(reverse("inventory:level", args=[store.pk, black[0].pk]), follow=True)

    html = response.content.decode()
    assert response.redirect_chain[-1][0].startswith(f"/stock/products/{product.pk}/")
    assert 'data-testid="detail-on_hand">2<' in html


def test_breakdown_of_an_empty_level_shows_zeros(signed_in, other_store, shirt):
    _, black, _ = shirt

    html = signed_in.get(reverse("inventory:level", args=[other_store.pk, black[0].pk]), **HTMX).content.decode()

    assert 'data-testid="detail-on_hand">0<' in html
    assert "No stock recorded here yet" in html


# --- Low stock -------------------------------------------------------------------------------------


def test_low_stock_lists_what_is_at_or_below_the_threshold_or_needs_a_count(signed_in, associate, store, other_store):
    low, plenty, flagged, elsewhere = (VariantFactory(sku=sku) for sku in ("LOW", "PLENTY", "FLAGGED", "ELSEWHERE"))
    receive(associate, store, low, 2)
    receive(associate, store, plenty, 9)
    receive(associate, store, flagged, 9)
    StockLevel.objects.filter(location=store, variant=flagged).update(needs_count=True)
    receive(associate, other_store, elsewhere, 1)

    response = signed_in.get(reverse("inventory:low-stock"))

    html = response.content.decode()
    assert 'data-testid="low-LOW"' in html
    assert 'data-testid="low-FLAGGED"' in html and 'data-testid="needs-count"' in html
    assert "PLENTY" not in html
    assert "ELSEWHERE" not in html
    assert f"sse:stock-location-{store.pk}" in html


def test_low_stock_threshold_is_adjustable(signed_in, associate, store):
    variant = VariantFactory(sku="FIVE")
    receive(associate, store, variant, 5)

    assert "FIVE" not in signed_in.get(reverse("inventory:low-stock")).content.decode()
    assert "FIVE" in signed_in.get(reverse("inventory:low-stock"), {"threshold": "5"}).content.decode()
    assert signed_in.get(reverse("inventory:low-stock"), {"threshold": "lots"}).status_code == 200


def test_low_stock_follows_the_location_switcher(client, associate, store, other_store):
    associate.extra_locations.add(other_store)
    variant = VariantFactory(sku="THERE")
    receive(associate, other_store, variant, 1)
    client.force_login(associate)
    session = client.session
    session[LOCATION_SESSION_KEY] = other_store.pk
    session.save()

    html = client.get(reverse("inventory:low-stock")).content.decode()

    assert other_store.name in html
    assert "THERE" in html


def test_low_stock_query_count_is_fixed(client, associate, store, django_assert_num_queries):
    for _n in range(30):
        receive(associate, store, VariantFactory(), 1)
    client.force_login(associate)

    with django_assert_num_queries(8):  # 5 for the session, user, location and roles; the live mark; count; the page
        response = client.get(reverse("inventory:low-stock"), **HTMX)

    assert response.content.decode().count('<tr data-testid="low-') == 30


# --- Ledger ----------------------------------------------------------------------------------------


def test_ledger_lists_movements_with_reason_actor_and_reference(signed_in, associate, store, manager):
    variant = VariantFactory(sku="LEDG-1")
    receive(associate, store, variant, 5)
    services.stock_adjust(
        actor=manager, location_id=store.pk, variant_id=variant.pk, delta=-2, reason_code="shrinkage", note="gone"
    )
    services.stock_receive(
        actor=associate,
        location_id=store.pk,
        variant_id=variant.pk,
        quantity=1,
        reference=services.Reference("purchase_order", "PO-77"),
    )

    html = signed_in.get(reverse("inventory:ledger", args=[variant.pk])).content.decode()

    assert html.count('data-testid="movement"') == 3
    assert "shrinkage" in html and "manager" in html and "PO-77" in html
    assert html.index("PO-77") < html.index("shrinkage")  # newest first
    assert 'data-testid="ledger-on-hand">4<' in html


def test_ledger_filters_by_reason_and_pages_by_id(signed_in, associate, store, monkeypatch):
    from inventory import views

    monkeypatch.setattr(views, "LEDGER_PAGE", 2)
    variant = VariantFactory()
    for _ in range(3):
        receive(associate, store, variant, 1)
    services.stock_adjust(actor=associate, location_id=store.pk, variant_id=variant.pk, delta=-1, reason_code="found")

    first = signed_in.get(reverse("inventory:ledger", args=[variant.pk])).content.decode()
    receipts = signed_in.get(reverse("inventory:ledger", args=[variant.pk]), {"reason": "receipt"}).content.decode()

    assert first.count('data-testid="movement"') == 2 and 'data-testid="older"' in first
    assert receipts.count('data-testid="movement"') == 2 and 'mono">found</span>' not in receipts
    assert 'mono">found</span>' in first


def test_ledger_of_a_location_you_do_not_work_for_is_refused(signed_in, other_store):
    variant = VariantFactory()

    response = signed_in.get(reverse("inventory:ledger", args=[variant.pk]), {"location": other_store.pk})

    assert response.status_code == 403


def test_warehouse_staff_see_the_grid_too(client, warehouse_operator, shirt):
    product, _, _ = shirt
    WarehouseFactory()
    client.force_login(warehouse_operator)

    assert client.get(reverse("inventory:product", args=[product.pk])).status_code == 200


def _cell(html: str, location_id: int, variant_id: int) -> str:
    marker = f'data-testid="cell-{location_id}-{variant_id}">'
    start = html.index(marker) + len(marker)
    return html[start : html.index("<", start)].strip()


def test_home_offers_the_inventory_screens_by_role(client, associate, manager):
    client.force_login(associate)
    associate_home = client.get(reverse("home")).content.decode()
    client.force_login(manager)
    manager_home = client.get(reverse("home")).content.decode()

    for page in ("inventory:search", "inventory:low-stock"):
        assert f'href="{reverse(page)}"' in associate_home
    for page in ("inventory:count", "inventory:adjust"):
        assert f'href="{reverse(page)}"' not in associate_home
        assert f'href="{reverse(page)}"' in manager_home


# --- Local time ----------------------------------------------------------------------------------


def test_pages_show_the_locations_local_time_and_the_api_stays_in_utc(signed_in, associate, manager, store, shirt):
    Location.objects.filter(pk=store.pk).update(time_zone="America/Chicago")
    variant = shirt[1][0]
    receive(associate, store, variant, 3)
    created = StockMovement.objects.get(variant=variant).created_at

    page = signed_in.get(f"/stock/ledger/{variant.pk}/").content.decode()
    local = created.astimezone(ZoneInfo("America/Chicago"))
    utc = created.astimezone(UTC)
    assert f"{local.day} {local:%b, %H:%M}" in page
    assert f"{utc.day} {utc:%b, %H:%M}" not in page  # five or six hours apart

    signed_in.force_login(manager)  # the ledger API is for managers; same store, same time zone
    api = signed_in.get("/api/v1/ledger/", {"sku": variant.sku}).json()["results"]
    assert api[0]["created_at"].endswith("Z")  # answers do not depend on who asks
    assert timezone.get_current_timezone_name() == "UTC"  # and nothing leaks to the next request


def test_a_location_needs_a_known_time_zone(signed_in, associate, store, shirt):
    with pytest.raises(ValidationError, match="not a time zone name"):
        LocationFactory.build(code="x-1", time_zone="America/Chicgo").full_clean()
    # One saved around validation (a raw update) is shown in UTC, not a server error.
    Location.objects.filter(pk=store.pk).update(time_zone="America/Chicgo")
    variant = shirt[1][0]
    receive(associate, store, variant, 1)
    assert signed_in.get(f"/stock/ledger/{variant.pk}/").status_code == 200
