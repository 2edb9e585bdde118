"""orders/demo.py: sales history through the ledger, dated to its days; idempotent."""

import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.models import Sum

from inventory.models import MovementReason, StockLevel, StockMovement
from orders.models import Fulfilment, Order, OrderLine, Status

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
ARGS = ("--stores", "2", "--variants", "120", "--days", "6", "--only", "inventory,staff,customers,orders")


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", *ARGS, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def test_demo_sales_history_goes_through_the_ledger_and_is_idempotent():
    output = seed()

    assert "orders:" in output
    orders = Order.objects.all()
    assert orders.count() > 10
    assert {o.placed_at.date() for o in orders}.__len__() >= 5  # spread over the days
    sold = StockMovement.objects.filter(reason=MovementReason.SALE)
    assert sold.exists()
    assert len({m.created_at.date() for m in sold}) >= 5  # dated to their days, not all today
    # A day's sales are dated at that day's last sale, and fulfilments when their order was placed.
    last_sale = {o.idempotency_key.rsplit(":", 1)[0]: o.placed_at for o in orders.order_by("placed_at")}  # store-day
    assert {m.created_at for m in sold} <= set(last_sale.values())
    assert all(f.created_at == f.order.placed_at for f in Fulfilment.objects.select_related("order"))
    # The opening stock was received before the first day sold from it.
    opening = StockMovement.objects.filter(reason=MovementReason.RECEIPT, reason_code="opening-balance")
    assert max(m.created_at for m in opening) < min(m.created_at for m in sold)
    # Units sold in take-now lines equal the ledger's sales.
    take_now_units = OrderLine.objects.filter(kind="take_now").aggregate(u=Sum("quantity"))["u"]
    assert -sold.aggregate(q=Sum("quantity"))["q"] == take_now_units
    # The ledger sums to the levels.
    for level in StockLevel.objects.all():
        for state in ("on_hand", "committed", "reserved"):
            ledger = (
                StockMovement.objects.filter(
                    location_id=level.location_id, variant_id=level.variant_id, state=state
                ).aggregate(q=Sum("quantity"))["q"]
                or 0
            )
            assert ledger == getattr(level, state)
        assert level.available >= 0
    assert not StockMovement.objects.filter(reason=MovementReason.FOUND_STOCK).exists()
    assert Order.objects.filter(status=Status.COLLECTED).exists()

    before = counts()
    again = seed()

    assert "orders: already seeded" in again
    assert counts() == before
