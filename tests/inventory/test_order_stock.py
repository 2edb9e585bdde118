"""inventory.services.stock_order_place: many order lines in one fixed-cost, guarded operation."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import services
from inventory.errors import InsufficientStockError, InvalidQuantityError, ReservationClosedError
from inventory.models import MovementReason, ReservationStatus, StockLevel, StockMovement
from inventory.services import OrderStockLine, Reference, SystemActor
from tests.factories import LocationFactory, VariantFactory

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("test")


def level(location, variant):
    return StockLevel.objects.get(location=location, variant=variant)


def test_converts_holds_commits_and_sells_in_one_operation(store):
    warehouse = LocationFactory(code="wh-x")
    a, b = VariantFactory(), VariantFactory()
    for location, variant in ((store, a), (warehouse, a), (warehouse, b)):
        services.stock_receive(actor=SYSTEM, location_id=location.pk, variant_id=variant.pk, quantity=5)
    hold = services.stock_reserve(actor=SYSTEM, location_id=warehouse.pk, variant_id=a.pk, quantity=2)

    services.stock_order_place(
        actor=SYSTEM,
        lines=[
            OrderStockLine(warehouse.pk, a.pk, 2, "commit", reservation_id=hold.pk),
            OrderStockLine(warehouse.pk, b.pk, 3, "commit"),
            OrderStockLine(store.pk, a.pk, 1, "sell"),
        ],
        reference=Reference("order", "SO-1"),
        idempotency_key="order:1",
    )

    assert (level(warehouse, a).reserved, level(warehouse, a).committed) == (0, 2)
    assert (level(warehouse, b).committed, level(warehouse, b).available) == (3, 2)
    assert level(store, a).on_hand == 4
    hold.refresh_from_db()
    assert hold.status == ReservationStatus.COMMITTED
    assert set(StockMovement.objects.filter(operation_key="order:1").values_list("reason", flat=True)) == {
        MovementReason.COMMIT,
        MovementReason.SALE,
    }


def test_a_short_commit_writes_nothing_and_names_what_is_available(store):
    a, b = VariantFactory(), VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=a.pk, quantity=5)
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=b.pk, quantity=1)
    before = StockMovement.objects.count()

    with pytest.raises(InsufficientStockError) as error:
        services.stock_order_place(
            actor=SYSTEM,
            lines=[OrderStockLine(store.pk, a.pk, 2, "commit"), OrderStockLine(store.pk, b.pk, 2, "commit")],
            idempotency_key="order:short",
        )

    assert error.value.extra["available"] == 1 and error.value.extra["sku"] == b.sku
    assert StockMovement.objects.count() == before
    assert level(store, a).committed == 0


def test_a_sale_beyond_the_record_is_found_stock_and_flags_a_count(store):
    variant = VariantFactory()

    services.stock_order_place(
        actor=SYSTEM, lines=[OrderStockLine(store.pk, variant.pk, 2, "sell")], idempotency_key="order:found"
    )

    assert level(store, variant).on_hand == 0 and level(store, variant).needs_count
    assert StockMovement.objects.get(reason=MovementReason.FOUND_STOCK).quantity == 2


def test_safety_stock_is_not_committed(store):
    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3)
    services.stock_apply(
        actor=SYSTEM, changes=[services.LevelChange(store.pk, variant.pk, {"safety_stock": 2})], reason="policy"
    )

    with pytest.raises(InsufficientStockError):
        services.stock_order_place(
            actor=SYSTEM, lines=[OrderStockLine(store.pk, variant.pk, 2, "commit")], idempotency_key="order:safety"
        )


def test_the_same_key_twice_has_one_effect(store):
    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=5)
    for _ in range(2):
        services.stock_order_place(
            actor=SYSTEM, lines=[OrderStockLine(store.pk, variant.pk, 2, "commit")], idempotency_key="order:twice"
        )

    assert level(store, variant).committed == 2


def test_a_closed_or_mismatched_hold_is_refused(store):
    variant = VariantFactory()
    services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=5)
    hold = services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)

    with pytest.raises(InvalidQuantityError):
        services.stock_order_place(
            actor=SYSTEM,
            lines=[OrderStockLine(store.pk, variant.pk, 1, "commit", reservation_id=hold.pk)],
            idempotency_key="order:mismatch",
        )
    services.stock_release(actor=SYSTEM, reservation_id=hold.pk)
    with pytest.raises(ReservationClosedError):
        services.stock_order_place(
            actor=SYSTEM,
            lines=[OrderStockLine(store.pk, variant.pk, 2, "commit", reservation_id=hold.pk)],
            idempotency_key="order:closed",
        )


def test_query_count_does_not_grow_with_lines(store):
    def run(count, key):
        variants = [VariantFactory() for _ in range(count)]
        for variant in variants:
            services.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3)
        holds = [
            services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=v.pk, quantity=1) for v in variants
        ]
        lines = [
            OrderStockLine(store.pk, v.pk, 1, "commit", reservation_id=h.pk)
            for v, h in zip(variants, holds, strict=True)
        ]
        lines += [OrderStockLine(store.pk, v.pk, 1, "sell") for v in variants]
        with CaptureQueriesContext(connection) as queries:
            services.stock_order_place(actor=SYSTEM, lines=lines, idempotency_key=key)
        return len(queries)

    assert run(1, "q1") == run(8, "q8")
