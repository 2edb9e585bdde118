"""Sales history for insights tests.

Insights only reads what orders wrote, and its tests need history spread over months, so these
helpers write finished orders as the orders app stores them (order, one fulfilment, lines) with a
chosen `placed_at`. The orders app's own services are covered by tests/orders.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from orders.models import Fulfilment, FulfilmentKind, Order, OrderLine, Status


def make_sale(
    *,
    location,
    placed_at: datetime,
    lines,
    customer=None,
    status: str = Status.COLLECTED,
    refunded: Decimal | str = "0",
    source_location=None,
) -> Order:
    """An order sold at `location` on `placed_at`. `lines` are (variant, quantity) or
    (variant, quantity, unit_price) or (variant, quantity, unit_price, returned_quantity)."""
    parsed = []
    for line in lines:
        variant, quantity, *rest = line
        price = Decimal(str(rest[0] if rest else variant.price))
        returned = rest[1] if len(rest) > 1 else 0
        parsed.append((variant, quantity, price, returned))
    total = sum((quantity * price for _, quantity, price, _ in parsed), Decimal("0"))
    refunded = Decimal(str(refunded))
    source = source_location or location
    order = Order.objects.create(
        location=location,
        customer=customer,
        status=status,
        subtotal=total,
        total=total,
        paid_total=total,
        refunded_total=refunded,
        placed_at=placed_at,
    )
    fulfilment = Fulfilment.objects.create(
        order=order, kind=FulfilmentKind.TAKE_NOW, status=status, source_location=source, stock_location=source
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            fulfilment=fulfilment,
            variant=variant,
            sku=variant.sku,
            name=variant.product.name,
            kind=FulfilmentKind.TAKE_NOW,
            source_location=source,
            quantity=quantity,
            unit_price=price,
            total=quantity * price,
            returned_quantity=returned,
            position=position,
        )
        for position, (variant, quantity, price, returned) in enumerate(parsed)
    )
    return order
