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
