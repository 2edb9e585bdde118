"""The stock engine under real concurrency: real threads, each on its own PostgreSQL connection.

No oversell, no deadlock, no double effect. These are the races peers got wrong (Saleor #543
oversold under concurrent checkouts; ERPNext #35244 deadlocked under concurrent POS sales).
"""

import random

import pytest

from inventory import services
from inventory.errors import InsufficientStockError, ReservationClosedError
from inventory.models import Reservation, ReservationStatus, StockLevel, StockMovement
from inventory.reconciliation import stock_reconcile
from inventory.services import Guard, LevelChange
from tests.factories import LocationFactory, VariantFactory
from tests.inventory.concurrency import assert_stock_sound, run_threads

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SYSTEM = services.SystemActor("concurrency-test")


@pytest.mark.parametrize("one_statement", [True, False], ids=["one-statement", "general-path"])
def test_twenty_buyers_for_the_last_five_units_exactly_five_win(settings, one_statement):
    settings.OMNI_ONE_STATEMENT_RESERVE = one_statement
    store, variant = LocationFactory(), VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=5)

    results, errors = run_threads(
        20,
        lambda i: services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=1),
    )

    assert len(results) == 5
    assert len(errors) == 15
    for error, trace in errors.values():
        assert isinstance(error, InsufficientStockError), trace
        assert error.extra["available"] == 0
        assert error.extra["sku"] == variant.sku
        assert "Only 0" in error.message
    level = StockLevel.objects.get(location=store, variant=variant)
    assert (level.on_hand, level.reserved, level.available) == (5, 5, 0)
    assert Reservation.objects.filter(status=ReservationStatus.ACTIVE).count() == 5
    assert StockMovement.objects.filter(state="reserved").count() == 5


@pytest.mark.parametrize("operation", ["receive", "reserve", "count", "sell_now"])
def test_eight_requests_with_one_idempotency_key_have_one_effect(operation):
    store, variant = LocationFactory(), VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=10)
    key = f"double-tap-{operation}"
    calls = {
        "receive": lambda: (
            services.stock_receive(
                actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3, idempotency_key=key
            ).key
        ),
        "reserve": lambda: (
            services.stock_reserve(
                actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3, idempotency_key=key
            ).pk
        ),
        "count": lambda: (
            services.stock_count(
                actor=SYSTEM,
                location_id=store.pk,
                lines=[services.CountLine(variant.pk, 13)],
                idempotency_key=key,
            ).operation.key
        ),
        "sell_now": lambda: (
            services.stock_sell_now(
                actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3, idempotency_key=key
            ).key
        ),
    }

    results, errors = run_threads(8, lambda i: calls[operation]())

    assert not errors, [trace for _, trace in errors.values()]
    assert len(set(results.values())) == 1  # everyone got the first result
    level = StockLevel.objects.get(location=store, variant=variant)
    expected = {"receive": (13, 0), "reserve": (10, 3), "count": (13, 0), "sell_now": (7, 0)}[operation]
    assert (level.on_hand, level.reserved) == expected
    assert StockMovement.objects.count() == 2  # the opening receipt and one effect
    assert stock_reconcile().drift_count == 0


def test_a_mixed_storm_on_shared_levels_never_deadlocks_and_keeps_ledger_equal_to_levels():
    stores = [LocationFactory(), LocationFactory(), LocationFactory()]
    variants = [VariantFactory() for _ in range(3)]
    # Create levels so their pk order differs from (location, variant) order: lock order must not
    # depend on which came first.
    for location in reversed(stores):
        for variant in reversed(variants):
            services.stock_receive(actor=SYSTEM, location_id=location.pk, variant_id=variant.pk, quantity=30)
    pairs = [(location.pk, variant.pk) for location in stores for variant in variants]
    expected_errors = (InsufficientStockError, ReservationClosedError)

    def storm(index):
        rng = random.Random(index)
        done = 0
        holds = []
        for _ in range(25):
            location_id, variant_id = rng.choice(pairs)
            action = rng.choice(
                [
                    "receive",
                    "reserve",
                    "commit",
                    "fulfil",
                    "release",
                    "transfer",
                    "count",
                    "sell",
                    "expire",
                    "commit_hold",
                ]
            )
            try:
                if action == "receive":
                    services.stock_receive(
                        actor=SYSTEM, location_id=location_id, variant_id=variant_id, quantity=rng.randint(1, 3)
                    )
                elif action == "reserve":
                    hold = services.stock_reserve(
                        actor=SYSTEM,
                        location_id=location_id,
                        variant_id=variant_id,
                        quantity=rng.randint(1, 3),
                        expires_at=None if rng.random() < 0.5 else _past(),
                    )
                    holds.append(hold)
                elif action == "release" and holds:
                    services.stock_release(actor=SYSTEM, reservation_id=holds.pop(rng.randrange(len(holds))).pk)
                elif action == "commit_hold" and holds:
                    hold = holds.pop(rng.randrange(len(holds)))
                    services.stock_commit(
                        actor=SYSTEM,
                        location_id=hold.location_id,
                        variant_id=hold.variant_id,
                        quantity=hold.quantity,
                        reservation_id=hold.pk,
                    )
                elif action == "commit":
                    services.stock_commit(actor=SYSTEM, location_id=location_id, variant_id=variant_id, quantity=1)
                elif action == "fulfil":
                    services.stock_fulfil(actor=SYSTEM, location_id=location_id, variant_id=variant_id, quantity=1)
                elif action == "transfer":
                    # Several levels in one operation, named in a random order.
                    chosen = rng.sample(pairs, 3)
                    changes = [LevelChange(chosen[0][0], chosen[0][1], {"on_hand": -2}, Guard.AVAILABLE)]
                    changes += [LevelChange(loc, var, {"on_hand": 1}) for loc, var in chosen[1:]]
                    rng.shuffle(changes)
                    services.stock_apply(actor=SYSTEM, changes=changes, reason="transfer_out")
                elif action == "count":
                    location_id = rng.choice(stores).pk
                    lines = [services.CountLine(variant.pk, rng.randint(20, 40)) for variant in variants]
                    rng.shuffle(lines)
                    services.stock_count(actor=SYSTEM, location_id=location_id, lines=lines)
                elif action == "sell":
                    services.stock_sell_now(actor=SYSTEM, location_id=location_id, variant_id=variant_id, quantity=1)
                elif action == "expire":
                    services.reservations_expire()
                done += 1
            except expected_errors:
                pass
        return done

    results, errors = run_threads(12, storm)

    assert not errors, "\n".join(trace for _, trace in errors.values())
    assert sum(results.values()) > 0
    assert_stock_sound()


def _past():
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(seconds=1)
