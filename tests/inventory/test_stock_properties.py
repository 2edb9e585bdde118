"""Property-based: any sequence of stock operations keeps the levels equal to the ledger.

A hypothesis state machine runs random sequences of every operation on four levels (two
locations x two variants). After every step: each level state equals the sum of its movements,
no state is negative, what is promised or set aside never exceeds on hand, and reserved equals
the active holds. A refused operation changes nothing at all.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule, run_state_machine_as_test

from inventory import services
from inventory.errors import InsufficientStockError, InvalidQuantityError, ReservationClosedError
from inventory.models import STOCK_STATES, Reservation, ReservationStatus, StockLevel, StockMovement
from inventory.services import Guard, LevelChange
from tests.factories import LocationFactory, VariantFactory

pytestmark = pytest.mark.django_db
SYSTEM = services.SystemActor("property-test")
REFUSED = (InsufficientStockError, ReservationClosedError, InvalidQuantityError)

quantities = st.integers(min_value=1, max_value=6)
level_indexes = st.integers(min_value=0, max_value=3)


class StockMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self):
        super().__init__()
        # Every example runs in a savepoint that teardown rolls back: a fresh world each time.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        locations = [LocationFactory(), LocationFactory()]
        variants = [VariantFactory(), VariantFactory()]
        self.levels = [(location.pk, variant.pk) for location in locations for variant in variants]

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers ---------------------------------------------------------------------------------

    def snapshot(self):
        rows = StockLevel.objects.order_by("pk").values_list("pk", *STOCK_STATES)
        return list(rows), StockMovement.objects.count(), list(Reservation.objects.values_list("pk", "status"))

    def attempt(self, operation):
        """Run an operation; if it is refused, nothing may have changed. Returns its result or None."""
        before = self.snapshot()
        try:
            return operation()
        except REFUSED:
            assert self.snapshot() == before, "a refused operation left a trace"
            return None

    def at(self, index):
        location_id, variant_id = self.levels[index]
        return {"location_id": location_id, "variant_id": variant_id}

    # --- rules -----------------------------------------------------------------------------------

    @rule(level=level_indexes, quantity=quantities)
    def receive(self, level, quantity):
        self.attempt(lambda: services.stock_receive(actor=SYSTEM, quantity=quantity, **self.at(level)))

    @rule(level=level_indexes, delta=st.integers(min_value=-6, max_value=6).filter(bool))
    def adjust(self, level, delta):
        self.attempt(lambda: services.stock_adjust(actor=SYSTEM, delta=delta, reason_code="test", **self.at(level)))

    @rule(location=st.integers(0, 1), counted=st.lists(st.integers(0, 12), min_size=1, max_size=2))
    def count(self, location, counted):
        location_id = self.levels[location * 2][0]
        lines = [services.CountLine(self.levels[location * 2 + i][1], value) for i, value in enumerate(counted)]
        self.attempt(lambda: services.stock_count(actor=SYSTEM, location_id=location_id, lines=lines))

    @rule(level=level_indexes, quantity=quantities)
    def damage(self, level, quantity):
        self.attempt(lambda: services.stock_mark_damaged(actor=SYSTEM, quantity=quantity, **self.at(level)))

    @rule(level=level_indexes, quantity=quantities, dispose=st.booleans())
    def release_damaged(self, level, quantity, dispose):
        self.attempt(
            lambda: services.stock_release_damaged(actor=SYSTEM, quantity=quantity, dispose=dispose, **self.at(level))
        )

    @rule(target=holds, level=level_indexes, quantity=quantities, expired=st.booleans())
    def reserve(self, level, quantity, expired):
        expires_at = timezone.now() - timedelta(seconds=1) if expired else None
        hold = self.attempt(
            lambda: services.stock_reserve(actor=SYSTEM, quantity=quantity, expires_at=expires_at, **self.at(level))
        )
        return hold.pk if hold else None

    @rule(hold=consumes(holds))
    def release(self, hold):
        if hold is not None:
            self.attempt(lambda: services.stock_release(actor=SYSTEM, reservation_id=hold))

    @rule(hold=consumes(holds))
    def commit_hold(self, hold):
        if hold is None:
            return
        reservation = Reservation.objects.get(pk=hold)
        self.attempt(
            lambda: services.stock_commit(
                actor=SYSTEM,
                location_id=reservation.location_id,
                variant_id=reservation.variant_id,
                quantity=reservation.quantity,
                reservation_id=hold,
            )
        )

    @rule()
    def expire(self):
        services.reservations_expire()

    @rule(level=level_indexes, quantity=quantities)
    def commit(self, level, quantity):
        self.attempt(lambda: services.stock_commit(actor=SYSTEM, quantity=quantity, **self.at(level)))

    @rule(level=level_indexes, quantity=quantities)
    def uncommit(self, level, quantity):
        self.attempt(lambda: services.stock_uncommit(actor=SYSTEM, quantity=quantity, **self.at(level)))

    @rule(level=level_indexes, quantity=quantities)
    def fulfil(self, level, quantity):
        self.attempt(lambda: services.stock_fulfil(actor=SYSTEM, quantity=quantity, **self.at(level)))

    @rule(level=level_indexes, quantity=quantities)
    def sell_now(self, level, quantity):
        self.attempt(lambda: services.stock_sell_now(actor=SYSTEM, quantity=quantity, **self.at(level)))

    @rule(level=level_indexes, quantity=quantities, damaged=st.booleans())
    def customer_return(self, level, quantity, damaged):
        self.attempt(lambda: services.stock_return(actor=SYSTEM, quantity=quantity, damaged=damaged, **self.at(level)))

    @rule(level=level_indexes, safety=st.integers(min_value=0, max_value=6))
    def set_safety(self, level, safety):
        self.attempt(lambda: services.stock_set_safety(actor=SYSTEM, safety_stock=safety, **self.at(level)))

    @rule(source=level_indexes, destination=level_indexes, quantity=quantities)
    def transfer_dispatch(self, source, destination, quantity):
        if source == destination:
            return
        (from_location, from_variant), (to_location, to_variant) = self.levels[source], self.levels[destination]
        changes = [
            LevelChange(from_location, from_variant, {"on_hand": -quantity}, Guard.AVAILABLE),
            LevelChange(to_location, to_variant, {"incoming": quantity}),
        ]
        self.attempt(lambda: services.stock_apply(actor=SYSTEM, changes=changes, reason="transfer_out"))

    @rule(level=level_indexes, quantity=quantities)
    def transfer_arrive(self, level, quantity):
        location_id, variant_id = self.levels[level]
        changes = [LevelChange(location_id, variant_id, {"incoming": -quantity, "on_hand": quantity})]
        self.attempt(lambda: services.stock_apply(actor=SYSTEM, changes=changes, reason="transfer_in"))

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def levels_equal_the_ledger_and_hold_their_bounds(self):
        sums = {
            (row["location_id"], row["variant_id"], row["state"]): row["total"]
            for row in StockMovement.objects.values("location_id", "variant_id", "state").annotate(
                total=Sum("quantity")
            )
        }
        holds = {}
        for reservation in Reservation.objects.filter(status=ReservationStatus.ACTIVE):
            key = (reservation.location_id, reservation.variant_id)
            holds[key] = holds.get(key, 0) + reservation.quantity
        levels = {(level.location_id, level.variant_id): level for level in StockLevel.objects.all()}
        for key, level in levels.items():
            for state in STOCK_STATES:
                assert getattr(level, state) == sums.get((*key, state), 0), (key, state)
                assert getattr(level, state) >= 0, (key, state)
            assert level.committed + level.reserved + level.unavailable <= level.on_hand
            assert level.available == (
                level.on_hand - level.committed - level.reserved - level.safety_stock - level.unavailable
            )
            assert level.reserved == holds.get(key, 0)
        orphans = {(loc, var) for loc, var, _ in sums if sums[(loc, var, _)]} - set(levels)
        assert not orphans, "movements for a level that does not exist"


def test_any_sequence_of_operations_keeps_levels_equal_to_the_ledger():
    run_state_machine_as_test(
        StockMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            database=None,  # no example files in the working tree
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
