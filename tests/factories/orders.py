"""Orders test helpers: stock put in through inventory.services, orders placed through orders.services."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

from inventory import services as stock
from inventory.services import SystemActor
from orders import services
from orders.models import FulfilmentKind, Tender
from orders.services import Address, DraftLine, OrderDraft, TenderInput
from tests.factories.inventory import LocationFactory, VariantFactory, WarehouseFactory

SYSTEM = SystemActor("tests")
_keys = itertools.count(1)

__all__ = [
    "SYSTEM",
    "Address",
    "DraftLine",
    "LocationFactory",
    "VariantFactory",
    "WarehouseFactory",
    "card",
    "cash",
    "draft",
    "give_stock",
    "place",
]


def give_stock(location, variant, quantity: int, *, safety: int = 0):
    """Receive `quantity` units of `variant` at `location` (and set safety stock, if any)."""
    stock.stock_receive(actor=SYSTEM, location_id=location.pk, variant_id=variant.pk, quantity=quantity)
    if safety:
        stock.stock_apply(
            actor=SYSTEM,
            changes=[stock.LevelChange(location.pk, variant.pk, {"safety_stock": safety})],
            reason="policy",
        )


def card(amount, *, last4="4242", ref=None) -> TenderInput:
    return TenderInput(Tender.CARD, Decimal(str(amount)), card_last4=last4, terminal_ref=ref or f"T{next(_keys)}")


def cash(amount, *, tendered=None) -> TenderInput:
    return TenderInput(
        Tender.CASH, Decimal(str(amount)), cash_tendered=Decimal(str(tendered)) if tendered is not None else None
    )


ADDRESS = Address(name="Ada Lovelace", line1="1 Congress Ave", city="Austin", region="TX", postcode="78701")


def draft(*, location, lines, tenders=None, customer=None, key=None, address=ADDRESS, **kwargs) -> OrderDraft:
    """An order draft; with no tenders, one card tender for the right total is added by `place`."""
    return OrderDraft(
        idempotency_key=key or f"test-{uuid.uuid4().hex}",
        lines=lines,
        tenders=tenders or [],
        location_id=location.pk if location is not None else None,
        customer_id=customer.pk if customer is not None else None,
        contact_name=customer.name if customer is not None else "",
        contact_email=customer.email if customer is not None else "",
        address=address,
        **kwargs,
    )


def place(actor, order_draft: OrderDraft, *, pay_by_card: bool = True):
    """Place the draft; when it has no tenders, pay the exact total by card (priced first)."""
    if not order_draft.tenders and pay_by_card:
        total = sum((Decimal(line.quantity) * _price(line.variant_id) for line in order_draft.lines), Decimal("0"))
        order_draft.tenders = [card(total)]
    return services.order_place(actor=actor, draft=order_draft)


def _price(variant_id):
    from inventory.models import Variant

    return Variant.objects.get(pk=variant_id).price


def take_now(variant, quantity=1, **kwargs) -> DraftLine:
    return DraftLine(variant.pk, quantity, kind=FulfilmentKind.TAKE_NOW, **kwargs)


def ship(variant, quantity=1, **kwargs) -> DraftLine:
    return DraftLine(variant.pk, quantity, kind=FulfilmentKind.SHIP, **kwargs)


def collect(variant, quantity=1, **kwargs) -> DraftLine:
    return DraftLine(variant.pk, quantity, kind=FulfilmentKind.COLLECT, **kwargs)
