"""Large operations (a transfer of thousands of lines) update their levels in bulk on PostgreSQL.

`stock_apply` with at least BULK_MIN_CHANGES changes, one per level, each needing its level to
exist, locks the levels in (location, variant) order with one statement and applies them with one
guarded UPDATE per shape. These tests pin that it behaves exactly as the per-level path: every
guard holds, a shortage anywhere writes nothing and names the level, and racing operations
neither deadlock nor lose a unit.
"""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import services
from inventory.errors import InsufficientStockError
from inventory.models import StockLevel, StockMovement
from inventory.reconciliation import stock_reconcile
from inventory.services import BULK_MIN_CHANGES, Guard, LevelChange
from tests.factories import LocationFactory, VariantFactory
from tests.inventory.concurrency import assert_stock_sound, run_threads

SYSTEM = services.SystemActor("bulk-test")
LEVELS = BULK_MIN_CHANGES + 8


def _stocked(count: int = LEVELS, on_hand: int = 10) -> tuple[list, list]:
    """`count` variants with `on_hand` units at each of two stores; returns (stores, variants)."""
    stores = [LocationFactory(), LocationFactory()]
    variants = [VariantFactory() for _ in range(count)]
    services.stock_opening_balance_bulk(
        actor=SYSTEM,
        rows=[(store.pk, variant.pk, on_hand) for store in stores for variant in variants],
        key_prefix=f"opening-{stores[0].pk}",
    )
    return stores, variants


def _level_updates(queries) -> int:
    return sum(1 for query in queries if query["sql"].lstrip().upper().startswith("UPDATE"))


def _figures(store_id: int) -> dict[int, tuple[int, int]]:
    return {
        level.variant_id: (level.on_hand, level.reserved) for level in StockLevel.objects.filter(location_id=store_id)
    }


@pytest.mark.django_db
def test_a_large_hold_updates_every_level_with_one_statement_and_the_ledger_agrees():
    (store, _other), variants = _stocked()
    changes = [
        LevelChange(store.pk, variant.pk, {"reserved": 1 + i % 3}, Guard.AVAILABLE)
        for i, variant in enumerate(variants)
    ]
    random.Random(3).shuffle(changes)

    with CaptureQueriesContext(connection) as queries:
        operation = services.stock_apply(actor=SYSTEM, changes=changes, reason="reservation")

    assert _level_updates(queries) == 1
    assert len(operation.movements) == LEVELS
    assert _figures(store.pk) == {variant.pk: (10, 1 + i % 3) for i, variant in enumerate(variants)}
    assert stock_reconcile().drift_count == 0


@pytest.mark.django_db
def test_mixed_shapes_and_signs_each_get_their_guard():
    (store, _other), variants = _stocked()
    half = LEVELS // 2
    # Dispatch-like (on hand and reserved both fall) for half, a guarded hold for the rest.
    services.stock_apply(
        actor=SYSTEM,
        changes=[LevelChange(store.pk, variant.pk, {"reserved": 2}, Guard.AVAILABLE) for variant in variants[:half]],
        reason="reservation",
    )
    changes = [LevelChange(store.pk, v.pk, {"on_hand": -2, "reserved": -2}) for v in variants[:half]]
    changes += [LevelChange(store.pk, v.pk, {"reserved": 10}, Guard.AVAILABLE) for v in variants[half:]]

    with CaptureQueriesContext(connection) as queries:
        services.stock_apply(actor=SYSTEM, changes=changes, reason="transfer_out")

    assert _level_updates(queries) == 2  # one per shape
    figures = _figures(store.pk)
    assert all(figures[v.pk] == (8, 0) for v in variants[:half])
    assert all(figures[v.pk] == (10, 10) for v in variants[half:])
    assert stock_reconcile().drift_count == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("shape", "short"),
    [
        ({"reserved": 11}, "more than available"),
        ({"on_hand": -11}, "more than on hand"),
    ],
)
def test_one_short_level_refuses_the_whole_operation_names_it_and_writes_nothing(shape, short):
    (store, _other), variants = _stocked()
    guard = Guard.AVAILABLE
    before_levels = _figures(store.pk)
    before_movements = StockMovement.objects.count()
    changes = [
        LevelChange(store.pk, v.pk, {next(iter(shape)): (-1 if "on_hand" in shape else 1)}, guard) for v in variants
    ]
    victim = variants[LEVELS // 2]
    changes[LEVELS // 2] = LevelChange(store.pk, victim.pk, shape, guard)

    with pytest.raises(InsufficientStockError) as raised:
        services.stock_apply(actor=SYSTEM, changes=changes, reason="transfer_out")

    assert raised.value.extra["sku"] == victim.sku, short
    assert raised.value.extra["available"] == 10
    assert _figures(store.pk) == before_levels
    assert StockMovement.objects.count() == before_movements


@pytest.mark.django_db
def test_a_missing_level_is_a_shortage_not_a_new_level():
    (store, _other), variants = _stocked()
    stranger = VariantFactory()
    changes = [LevelChange(store.pk, v.pk, {"reserved": 1}, Guard.AVAILABLE) for v in [*variants, stranger]]

    with pytest.raises(InsufficientStockError) as raised:
        services.stock_apply(actor=SYSTEM, changes=changes, reason="reservation")

    assert raised.value.extra["sku"] == stranger.sku
    assert not StockLevel.objects.filter(variant=stranger).exists()


@pytest.mark.django_db
def test_operations_that_may_create_levels_or_repeat_one_keep_the_per_level_path():
    (store, _other), variants = _stocked()
    receipts = [LevelChange(store.pk, v.pk, {"on_hand": 1}) for v in variants]  # may create levels
    # Two changes to one level (different states): one row per level in the bulk UPDATE cannot express them.
    twice = [LevelChange(store.pk, v.pk, {"reserved": 1}, Guard.AVAILABLE) for v in variants]
    twice.append(LevelChange(store.pk, variants[0].pk, {"on_hand": -1}, Guard.AVAILABLE))

    with CaptureQueriesContext(connection) as queries:
        services.stock_apply(actor=SYSTEM, changes=receipts, reason="receipt")
        services.stock_apply(actor=SYSTEM, changes=twice, reason="reservation")

    assert _level_updates(queries) == 2 * LEVELS + 1
    assert _figures(store.pk)[variants[0].pk] == (10, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_large_operations_racing_holds_on_the_same_levels_never_deadlock_or_oversell():
    stores, variants = _stocked(on_hand=6)
    pairs = [(store.pk, variant.pk) for store in stores for variant in variants]

    def work(index: int) -> int:
        rng = random.Random(index)
        done = 0
        for _ in range(12):
            try:
                if index % 2:
                    # A transfer's worth of holds over most levels, named in a random order.
                    chosen = rng.sample(pairs, len(pairs) - 4)
                    changes = [LevelChange(loc, var, {"on_hand": -1}, Guard.AVAILABLE) for loc, var in chosen]
                    services.stock_apply(actor=SYSTEM, changes=changes, reason="transfer_out")
                else:
                    location_id, variant_id = rng.choice(pairs)
                    services.stock_reserve(actor=SYSTEM, location_id=location_id, variant_id=variant_id, quantity=1)
                done += 1
            except InsufficientStockError:
                pass
        return done

    results, errors = run_threads(8, work)

    assert not errors, "\n".join(trace for _, trace in errors.values())
    assert sum(results.values()) > 0
    assert_stock_sound()
    levels = list(StockLevel.objects.all())
    assert all(level.available >= 0 for level in levels)
    assert sum(level.on_hand for level in levels) < 6 * len(pairs)  # some transfers went through
