"""The stock engine: every operation changes levels and ledger together, or nothing at all."""

import pytest
from django.db.models import Sum

from inventory import services
from inventory.errors import InsufficientStockError
from inventory.models import MovementReason, ReservationStatus, StockLevel, StockMovement
from inventory.services import SystemActor
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("test")


def level(location, variant):
    return StockLevel.objects.get(location=location, variant=variant)


def ledger_sum(location, variant, state):
    return (
        StockMovement.objects.filter(location=location, variant=variant, state=state).aggregate(s=Sum("quantity"))["s"]
        or 0
    )


def test_receive_creates_level_and_movement(store, associate):
    variant = VariantFactory()

    services.stock_receive(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=5)

    assert level(store, variant).on_hand == 5
    assert level(store, variant).available == 5
    movement = StockMovement.objects.get()
    assert (movement.state, movement.quantity, movement.reason, movement.actor_label) == (
        "on_hand",
        5,
        MovementReason.RECEIPT,
        "associate",
    )


def test_same_key_twice_has_one_effect(store):
    variant = VariantFactory()
    for _ in range(2):
        services.stock_receive(
            actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3, idempotency_key="po-1"
        )

    assert level(store, variant).on_hand == 3
    assert StockMovement.objects.count() == 1


def test_reserve_beyond_available_fails_naming_what_is_there_and_writes_nothing(store):
    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)

    with pytest.raises(InsufficientStockError) as error:
        services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3)

    assert error.value.extra["available"] == 2
    assert "Only 2" in error.value.message
    assert level(store, variant).reserved == 0
    assert StockMovement.objects.count() == 1


def test_reserve_commit_fulfil_keeps_ledger_and_levels_equal(store):
    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=4)

    hold = services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3)
    services.stock_commit(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3, reservation_id=hold.pk)
    services.stock_fulfil(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)

    row = level(store, variant)
    assert (row.on_hand, row.committed, row.reserved, row.available) == (2, 1, 0, 1)
    for state in ("on_hand", "committed", "reserved"):
        assert ledger_sum(store, variant, state) == getattr(row, state)
    hold.refresh_from_db()
    assert hold.status == ReservationStatus.COMMITTED


def test_safety_stock_is_never_sold(store):
    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3)
    services.stock_set_safety(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, safety_stock=2)

    with pytest.raises(InsufficientStockError):
        services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)

    services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=1)
    assert level(store, variant).available == 0


def test_take_now_sale_of_unrecorded_item_records_found_stock_and_flags_count(store):
    variant = VariantFactory()

    services.stock_sell_now(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=1)

    row = level(store, variant)
    assert row.on_hand == 0
    assert row.needs_count is True
    assert list(StockMovement.objects.order_by("pk").values_list("reason", "quantity")) == [
        (MovementReason.FOUND_STOCK, 1),
        (MovementReason.SALE, -1),
    ]


def test_expired_reservations_are_released(store):
    from datetime import timedelta

    from django.utils import timezone

    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)
    hold = services.stock_reserve(
        actor=SYSTEM,
        location_id=store.pk,
        variant_id=variant.pk,
        quantity=2,
        expires_at=timezone.now() - timedelta(seconds=1),
    )

    assert services.reservations_expire() == 1

    hold.refresh_from_db()
    assert hold.status == ReservationStatus.EXPIRED
    assert level(store, variant).available == 2
    assert services.reservations_expire() == 0


@pytest.fixture(params=[True, False], ids=["one-statement", "general-path"])
def reserve_path(request, settings):
    """Run a test through both reservation paths (PostgreSQL's one statement and the general one)."""
    settings.OMNI_ONE_STATEMENT_RESERVE = request.param
    return request.param


def test_reservation_writes_hold_movement_event_and_level_together(store, reserve_path, associate):
    from omni.models import LiveEvent

    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=5)
    events_before = LiveEvent.objects.count()

    hold = services.stock_reserve(
        actor=associate,
        location_id=store.pk,
        variant_id=variant.pk,
        quantity=2,
        reference=services.Reference("cart", "C-9"),
        idempotency_key="cart-9-line-1",
    )

    hold.refresh_from_db()
    assert (hold.status, hold.quantity, hold.reference_type, hold.reference_id) == ("active", 2, "cart", "C-9")
    assert hold.created_by == associate
    assert hold.expires_at is not None
    row = level(store, variant)
    assert (row.reserved, row.available) == (2, 3)
    movement = StockMovement.objects.get(state="reserved")
    assert (movement.quantity, movement.reason, movement.actor, movement.actor_label) == (
        2,
        MovementReason.RESERVATION,
        associate,
        "associate",
    )
    assert (movement.reference_type, movement.reference_id, movement.operation_key) == (
        "reservation",
        str(hold.pk),
        "cart-9-line-1",
    )
    event = LiveEvent.objects.order_by("-pk").first()
    assert LiveEvent.objects.count() == events_before + 1
    assert event.payload == {"levels": [[store.pk, variant.pk]], "reason": "reservation"}


def test_reservation_refused_writes_nothing_on_either_path(store, reserve_path):
    from omni.models import LiveEvent

    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=1)
    before = (StockMovement.objects.count(), LiveEvent.objects.count())

    with pytest.raises(InsufficientStockError) as error:
        services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)

    assert error.value.extra["available"] == 1
    assert (StockMovement.objects.count(), LiveEvent.objects.count()) == before
    assert not services.Reservation.objects.exists()
    assert level(store, variant).reserved == 0


def test_reservation_of_a_level_that_does_not_exist_is_refused(store, reserve_path):
    variant = VariantFactory()

    with pytest.raises(InsufficientStockError):
        services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=1)

    assert not StockMovement.objects.exists()


def test_reservation_key_replayed_returns_the_first_hold_and_a_different_one_conflicts(store, reserve_path):
    from inventory.errors import IdempotencyConflictError

    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=5)
    first = services.stock_reserve(
        actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2, idempotency_key="k"
    )

    again = services.stock_reserve(
        actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2, idempotency_key="k"
    )
    with pytest.raises(IdempotencyConflictError):
        services.stock_reserve(
            actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3, idempotency_key="k"
        )

    assert again.pk == first.pk
    assert level(store, variant).reserved == 2


def test_reservation_inside_a_callers_transaction_rolls_back_with_it(store, reserve_path):
    from django.db import transaction

    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=5)

    with pytest.raises(RuntimeError), transaction.atomic():
        services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)
        raise RuntimeError("the caller failed after reserving")

    assert level(store, variant).reserved == 0
    assert not StockMovement.objects.filter(state="reserved").exists()


def test_a_refused_reservation_inside_a_callers_transaction_leaves_it_usable(store, reserve_path):
    from django.db import transaction

    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=1)

    with transaction.atomic():
        with pytest.raises(InsufficientStockError):
            services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)
        hold = services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=1)

    assert services.Reservation.objects.get() == hold
    assert StockMovement.objects.filter(state="reserved").count() == 1
    assert level(store, variant).reserved == 1


def test_the_returned_reservation_is_the_stored_row(store, reserve_path, associate):
    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3)

    hold = services.stock_reserve(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=2)

    stored = services.Reservation.objects.get(pk=hold.pk)
    fields = [f.attname for f in services.Reservation._meta.concrete_fields]
    assert [getattr(hold, name) for name in fields] == [getattr(stored, name) for name in fields]
