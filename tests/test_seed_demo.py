"""manage.py seed_demo: the demo retailer's network, catalogue, stock and staff; idempotent and deterministic."""

from __future__ import annotations

import io
import random
import re
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import Sum

from inventory import demo
from inventory.barcodes import is_valid_gtin
from inventory.models import Location, LocationKind, Product, StockLevel, StockMovement, Variant
from omni.models import User
from omni.roles import Role

SMALL = ("--stores", "3", "--variants", "200")
CORE = ("--only", "inventory,staff")


def seed_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models(include_auto_created=True)}


# --- Locations ---------------------------------------------------------------------------------


def test_seed_creates_a_warehouse_and_stores_with_coordinates_and_capabilities(db):
    seed_demo(*SMALL, *CORE)

    warehouse = Location.objects.get(code=demo.WAREHOUSE_CODE)
    stores = list(Location.objects.filter(kind=LocationKind.STORE).order_by("code"))
    assert warehouse.kind == LocationKind.WAREHOUSE
    assert (warehouse.ships_to_customers, warehouse.sends_transfers, warehouse.sells_online) == (True, True, True)
    assert (warehouse.sells_in_store, warehouse.offers_pickup) == (False, False)
    assert [store.code for store in stores] == ["aus-01", "dal-01", "hou-01"]
    assert {store.city for store in stores} == {"Austin", "Dallas", "Houston"}
    for location in [warehouse, *stores]:
        assert location.latitude is not None and 25 < location.latitude < 37
        assert location.longitude is not None and -107 < location.longitude < -93
        assert location.time_zone == "America/Chicago"
        assert location.tax_rate == Decimal("0.0825")
        assert location.address_line1 and location.postcode
    assert all(store.offers_pickup and store.sells_in_store and not store.sells_online for store in stores)


def test_default_network_is_eight_stores_in_three_cities_with_one_flagship_each():
    plans = demo.plan_locations(stores=8, rng=random.Random(1))

    stores = plans[1:]
    assert plans[0].code == demo.WAREHOUSE_CODE
    assert Counter(plan.fields["city"] for plan in stores) == {"Austin": 3, "Dallas": 3, "Houston": 2}
    assert stores[0].code == demo.FIRST_STORE_CODE
    assert [plan.code for plan in stores if plan.fields["ships_to_customers"]] == ["aus-01", "dal-01", "hou-01"]


def test_fifty_stores_spread_over_five_cities_with_unique_codes_and_names():
    plans = demo.plan_locations(stores=50, rng=random.Random(1))[1:]

    assert len({plan.code for plan in plans}) == 50
    assert len({plan.fields["name"] for plan in plans}) == 50
    assert Counter(plan.fields["city"] for plan in plans) == {
        "Austin": 10,
        "Dallas": 10,
        "Houston": 10,
        "San Antonio": 10,
        "Fort Worth": 10,
    }
    assert all(len(plan.code) <= 20 for plan in plans)


# --- Catalogue ---------------------------------------------------------------------------------


def test_seed_creates_exactly_the_requested_variants_with_valid_unique_barcodes_and_skus(db):
    seed_demo(*SMALL, *CORE)

    variants = list(Variant.objects.select_related("product"))
    assert len(variants) == 200
    barcodes = [variant.barcode for variant in variants]
    assert all(barcode and len(barcode) == 13 and is_valid_gtin(barcode) for barcode in barcodes)
    assert all(barcode.startswith(demo.COMPANY_PREFIX) for barcode in barcodes)
    assert len(set(barcodes)) == 200
    for variant in variants:
        assert re.fullmatch(rf"{variant.product.style}-[A-Z]{{3}}-(XS|S|M|L|XL|3[6-9]|4[0-5]|OS)", variant.sku)
        assert variant.price > 0
    assert 10 <= Product.objects.count() <= 30


def test_the_default_catalogue_is_about_300_products_in_every_category_size_run_and_season():
    plans = demo.plan_catalogue(variants=3000, rng=random.Random(42))

    variants = [variant for plan in plans for variant in plan.variants]
    assert len(variants) == 3000
    assert 240 <= len(plans) <= 330
    assert {plan.category for plan in plans} == {"tops", "bottoms", "dresses", "outerwear", "shoes", "accessories"}
    assert {plan.season for plan in plans} == {"SS26", "AW26"}
    assert len({plan.style for plan in plans}) == len(plans)
    assert len({variant.sku for variant in variants}) == 3000
    assert len({variant.barcode for variant in variants}) == 3000
    assert all(is_valid_gtin(variant.barcode) for variant in variants)
    for plan in plans[:-1]:  # the last product keeps only the variants that fit
        colours = {variant.colour for variant in plan.variants}
        sizes = {variant.size for variant in plan.variants}
        assert 2 <= len(colours) <= 4
        assert len(plan.variants) == len(colours) * len(sizes)
        if plan.category == "shoes":
            assert sizes <= {str(size) for size in range(36, 46)}
        elif plan.category == "accessories":
            assert sizes == {demo.ONE_SIZE}
        else:
            assert sizes == {"XS", "S", "M", "L", "XL"}
        assert len({variant.price for variant in plan.variants}) == 1


def test_a_bigger_catalogue_starts_with_the_smaller_one():
    small = demo.plan_catalogue(variants=500, rng=random.Random(7))
    big = demo.plan_catalogue(variants=2000, rng=random.Random(7))

    small_variants = [(v.sku, v.barcode, v.price) for plan in small for v in plan.variants]
    big_variants = [(v.sku, v.barcode, v.price) for plan in big for v in plan.variants]
    assert big_variants[:500] == small_variants


def test_plans_are_deterministic_for_a_seed_and_differ_between_seeds():
    def skus_and_prices(seed: int) -> list[tuple[str, str, Decimal]]:
        plans = demo.plan_catalogue(variants=400, rng=random.Random(seed))
        return [(plan.name, variant.sku, variant.price) for plan in plans for variant in plan.variants]

    assert skus_and_prices(42) == skus_and_prices(42)
    assert skus_and_prices(42) != skus_and_prices(43)


# --- Stock -------------------------------------------------------------------------------------


def test_stock_is_ledger_consistent_deep_at_the_warehouse_and_shallow_in_stores(db):
    seed_demo(*SMALL, *CORE)

    levels = list(StockLevel.objects.select_related("location"))
    ledger: dict[tuple[int, int, str], int] = defaultdict(int)
    for row in StockMovement.objects.values("location_id", "variant_id", "state").annotate(total=Sum("quantity")):
        ledger[row["location_id"], row["variant_id"], row["state"]] = row["total"]
    for level in levels:
        for state in ("on_hand", "committed", "reserved", "safety_stock", "unavailable", "incoming"):
            assert getattr(level, state) == ledger.pop((level.location_id, level.variant_id, state), 0)
    assert not {key: total for key, total in ledger.items() if total}, "movements without a level"

    warehouse = [level.on_hand for level in levels if level.location.kind == LocationKind.WAREHOUSE]
    store = [level.on_hand for level in levels if level.location.kind == LocationKind.STORE]
    assert sum(warehouse) / len(warehouse) > 4 * sum(store) / len(store)
    assert len(store) < 3 * 200, "some store levels are zero (no row)"
    assert any(quantity == 1 for quantity in store), "some store levels are low"
    assert StockMovement.objects.filter(reason="receipt", reason_code="opening-balance").count() == len(levels)
    safety = [level for level in levels if level.safety_stock]
    assert safety and all(level.safety_stock <= level.on_hand for level in safety)


# --- Staff -------------------------------------------------------------------------------------


def test_demo_accounts_have_their_roles_homes_and_the_demo_password(db):
    seed_demo(*SMALL, *CORE)

    users = {user.username: user for user in User.objects.prefetch_related("groups", "extra_locations")}
    expected = {
        "admin": (Role.ADMIN, None),
        "manager": (Role.MANAGER, "aus-01"),
        "associate": (Role.ASSOCIATE, "aus-01"),
        "warehouse": (Role.WAREHOUSE, demo.WAREHOUSE_CODE),
    }
    for username, (role, home) in expected.items():
        user = users[username]
        assert [group.name for group in user.groups.all()] == [role.value]
        assert (user.home_location.code if user.home_location else None) == home
        assert user.check_password(settings.OMNI_DEMO_PASSWORD)
        assert user.is_active
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert not any(users[name].is_superuser or users[name].is_staff for name in ("manager", "associate", "warehouse"))


def test_every_store_has_a_manager_and_associates(db):
    seed_demo(*SMALL, *CORE)

    for store in Location.objects.filter(kind=LocationKind.STORE):
        roles = Counter(
            group for user in User.objects.filter(home_location=store) for group in user.groups.values_list("name")
        )
        assert roles[(Role.MANAGER.value,)] >= 1
        assert roles[(Role.ASSOCIATE.value,)] >= 2
    assert User.objects.filter(home_location__code=demo.WAREHOUSE_CODE, groups__name=Role.WAREHOUSE).count() == 3


# --- Idempotency, scaling, flags ---------------------------------------------------------------


def test_a_second_run_changes_nothing(db):
    seed_demo(*SMALL, *CORE)
    before = row_counts()
    levels = list(StockLevel.objects.order_by("pk").values_list("on_hand", "safety_stock", "available"))
    passwords = dict(User.objects.values_list("username", "password"))

    output = seed_demo(*SMALL, *CORE)

    assert row_counts() == before
    assert list(StockLevel.objects.order_by("pk").values_list("on_hand", "safety_stock", "available")) == levels
    assert dict(User.objects.values_list("username", "password")) == passwords
    assert "locations: already seeded" in output
    assert "catalogue: already seeded" in output
    assert "stock: already seeded" in output
    assert "staff: already seeded" in output


def test_every_apps_demo_data_is_idempotent_and_keeps_the_ledger_whole(db):
    """The contract in docs/DEMO_DATA.md, for every app's demo module: a second run writes nothing."""
    seed_demo(*SMALL, "--days", "2")
    before = row_counts()

    seed_demo(*SMALL, "--days", "2")

    assert row_counts() == before
    on_hand_ledger = (
        StockMovement.objects.filter(state="on_hand")
        .values("location_id", "variant_id")
        .annotate(total=Sum("quantity"))
    )
    ledger = {(row["location_id"], row["variant_id"]): row["total"] for row in on_hand_ledger}
    assert {key: total for key, total in ledger.items() if total} == {
        key: on_hand for key, on_hand in seeded_levels().items() if on_hand
    }


def test_scaling_up_extends_the_demo_retailer(db):
    seed_demo(*SMALL, *CORE)
    barcodes = dict(Variant.objects.values_list("sku", "barcode"))

    seed_demo("--stores", "4", "--variants", "260", *CORE)

    assert Variant.objects.count() == 260
    assert Location.objects.filter(kind=LocationKind.STORE).count() == 4
    assert {sku: barcode for sku, barcode in Variant.objects.values_list("sku", "barcode") if sku in barcodes} == (
        barcodes
    )
    assert StockLevel.objects.filter(location__code="aus-02").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--stores", "0"), "--stores"),
        (("--variants", "0"), "--variants"),
        (("--days", "-1"), "--days"),
        (("--only", "inventory,nonsense"), "nonsense"),
    ],
)
def test_bad_flags_are_refused_before_anything_is_written(db, args, message):
    with pytest.raises(CommandError, match=message):
        seed_demo(*args)

    assert not Location.objects.exists()


def planned_levels(*, stores: int, variants: int, seed: int = 42) -> dict[tuple[int, int], int]:
    """What the stock plan says, for the seeded ids: {(location_id, variant_id): on_hand} without zeros."""
    rng = random.Random(f"{seed}:inventory")
    _, catalogue_rng, stock_rng = (random.Random(rng.getrandbits(64)) for _ in range(3))
    catalogue = demo.plan_catalogue(variants=variants, rng=catalogue_rng)
    locations = Location.objects.in_bulk([demo.WAREHOUSE_CODE, *demo.store_codes(stores)], field_name="code")
    flagships = {p.code for p in demo.plan_locations(stores=stores, rng=random.Random(0)) if p.flagship}
    rows = demo.plan_stock(
        catalogue=catalogue,
        variant_ids=dict(Variant.objects.values_list("sku", "id")),
        warehouse_id=locations[demo.WAREHOUSE_CODE].pk,
        stores=[(locations[code].pk, code in flagships) for code in demo.store_codes(stores)],
        rng=stock_rng,
    )
    return {(location_id, variant_id): quantity for location_id, variant_id, quantity in rows if quantity}


def seeded_levels() -> dict[tuple[int, int], int]:
    return {
        (level[0], level[1]): level[2]
        for level in StockLevel.objects.values_list("location_id", "variant_id", "on_hand")
    }


def test_seeded_stock_is_exactly_the_plan(db):
    seed_demo(*SMALL, "--only", "inventory")

    assert seeded_levels() == planned_levels(stores=3, variants=200)


@pytest.mark.django_db(transaction=True)
def test_stock_loaded_by_parallel_processes_is_the_same_plan_and_ledger_consistent():
    output = seed_demo(*SMALL, "--only", "inventory", "--jobs", "2")

    assert seeded_levels() == planned_levels(stores=3, variants=200)
    on_hand_ledger = (
        StockMovement.objects.filter(state="on_hand")
        .values("location_id", "variant_id")
        .annotate(total=Sum("quantity"))
    )
    ledger = {(row["location_id"], row["variant_id"]): row["total"] for row in on_hand_ledger}
    assert ledger == seeded_levels()
    assert "opening balances loaded" in output
    assert seed_demo(*SMALL, "--only", "inventory", "--jobs", "2").count("already seeded") == 3


def test_adding_stores_leaves_the_existing_locations_stock_plan_as_it_was():
    catalogue = demo.plan_catalogue(variants=300, rng=random.Random(3))
    variant_ids = {variant.sku: n for n, variant in enumerate((v for p in catalogue for v in p.variants), start=1)}

    def rows(stores: int) -> list[tuple[int, int, int]]:
        return list(
            demo.plan_stock(
                catalogue=catalogue,
                variant_ids=variant_ids,
                warehouse_id=100,
                stores=[(101 + n, n == 0) for n in range(stores)],
                rng=random.Random(9),
            )
        )

    few, more = rows(2), rows(5)
    assert len(few) == 3 * 300 and len(more) == 6 * 300
    assert more[: len(few)] == few
    assert all(quantity >= 0 for _, _, quantity in more)
