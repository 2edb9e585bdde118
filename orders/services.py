"""Every write to orders: carts, placing an order, fulfilment, cancellation, returns, gift cards.

Stock only ever changes through inventory.services:

    cart line (ship / collect)   stock_reserve with an expiry at the planned source(s)
    placing the order            stock_order_place: holds become commitments, take-now lines are
                                 sold (never blocked), unheld ship/collect lines are committed
                                 from available; one operation, a fixed number of queries
    collect from another store   transfers.services.transfer_request_for_order brings the
                                 committed units to the pickup store
    shipped / collected          stock_apply FULFIL (committed and on hand go down)
    cancelled                    stock_apply CANCEL (committed goes down)
    returned                     stock_apply RETURN (on hand up; damaged units also unavailable)

Placing is idempotent by key (a unique constraint on Order.idempotency_key): a double tap, a retry
or a lost response yields one order and one set of payments. Emails leave through Celery after
commit. Every change writes an OrderEvent (the timeline).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from inventory import services as stock
from inventory.errors import InsufficientStockError
from inventory.models import Location, MovementReason, Reservation, ReservationStatus, Variant
from inventory.services import Guard, LevelChange, OrderStockLine, Reference, SystemActor
from omni.live import live_publish
from omni.roles import Role, can_act_at, has_role

from . import pricing, sourcing
from .errors import (
    AddressRequiredError,
    ApprovalRejectedError,
    ApprovalRequiredError,
    CancelNotAllowedError,
    CartError,
    CollectionCodeError,
    CustomerRequiredError,
    GiftCardError,
    IdempotencyConflictError,
    InvalidOrderError,
    InvalidTenderError,
    InvalidTransitionError,
    OrderNotFoundError,
    OutOfStockError,
    PaymentMismatchError,
    PickError,
    ReturnNotAllowedError,
)
from .locks import (
    cart_lock,
    fulfilment_lock,
    fulfilments_lock,
    gift_cards_lock,
    gift_cards_lock_by_id,
    order_lines_lock,
    order_lock,
)
from .models import (
    Cart,
    CartHold,
    CartLine,
    Channel,
    Fulfilment,
    FulfilmentKind,
    GiftCard,
    GiftCardEntry,
    GiftCardKind,
    LostDemand,
    ManagerPin,
    Order,
    OrderEvent,
    OrderLine,
    OrderReturn,
    Payment,
    Refund,
    ReturnLine,
    Status,
    Tender,
    order_number,
)
from .pricing import NO_DISCOUNT, ZERO, Discount, cents
from .selectors import sourcing_candidates
from .states import CANCELLABLE, RETURNABLE, can_transition, order_status_for

logger = logging.getLogger(__name__)

MAX_LINES = 200
MAX_QUANTITY = 999
MAX_CODE_ATTEMPTS = 5
PLACE_ATTEMPTS = 3  # re-source and retry when a racing order took the planned stock


# --- Actors and events -----------------------------------------------------------------------------


def _actor(actor: Any) -> tuple[Any, str]:
    """(user or None, label): a signed-in user or a SystemActor, as inventory records them."""
    if isinstance(actor, SystemActor):
        return None, actor.label
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise ValueError("An order change needs an actor: a signed-in user or a SystemActor.")
    return actor, actor.get_username()


def _event(
    order_id: int,
    kind: str,
    message: str,
    *,
    actor: Any,
    fulfilment_id: int | None = None,
    location_id: int | None = None,
    data: dict[str, Any] | None = None,
    at: Any = None,
) -> OrderEvent:
    user, label = _actor(actor)
    return OrderEvent(
        order_id=order_id,
        fulfilment_id=fulfilment_id,
        kind=kind,
        message=message[:255],
        data=data or {},
        location_id=location_id,
        actor=user,
        actor_label=label,
        created_at=at or timezone.now(),
    )


def _order_reference(order_id: int) -> Reference:
    return Reference("order", order_number(order_id))


def _queue(task_name: str, **kwargs: Any) -> None:
    """Send a Celery task after the current transaction commits (never for a rolled-back change).

    A broker that cannot take the message is logged, not raised: the change is committed by then,
    and the client must not see an error for it (a retry would only find the order placed).
    """
    transaction.on_commit(partial(_send_task, task_name, kwargs))


def _send_task(task_name: str, kwargs: dict[str, Any]) -> None:
    from . import tasks

    try:
        getattr(tasks, task_name).delay(**kwargs)
    except Exception:  # after commit: report, never fail the request
        logger.exception("could not queue %s %s", task_name, kwargs)


# --- Manager approval --------------------------------------------------------------------------------


def manager_approve(*, username: str = "", password: str = "", pin: str = "", location_id: int | None) -> Any:
    """The manager approving a discount, from their credentials or their PIN.

    A PIN identifies the manager by matching it against the PINs of the store's managers (a PIN is
    only accepted when it matches exactly one of them). Raises ApprovalRejectedError.
    """
    from omni.models import User

    manager = None
    if username and password:
        manager = authenticate(username=username, password=password)
    elif pin:
        pins = ManagerPin.objects.select_related("user").filter(user__is_active=True)
        matches = [p.user for p in pins if check_password(pin, p.pin_hash)]
        manager = matches[0] if len(matches) == 1 else None
    if not isinstance(manager, User) or not manager.is_active:
        raise ApprovalRejectedError()
    if not has_role(manager, Role.MANAGER) or not can_act_at(manager, location_id):
        raise ApprovalRejectedError()
    return manager


def manager_pin_set(*, user: Any, pin: str) -> ManagerPin:
    """Set a manager's approval PIN (4 to 8 digits)."""
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        raise InvalidOrderError("A PIN is 4 to 8 digits.")
    if not has_role(user, Role.MANAGER):
        raise ApprovalRejectedError()
    record, _ = ManagerPin.objects.update_or_create(user=user, defaults={"pin_hash": make_password(pin)})
    return record


def _check_approver(approver: Any, location_id: int | None) -> None:
    if approver is None or not has_role(approver, Role.MANAGER) or not can_act_at(approver, location_id):
        raise ApprovalRejectedError()


# --- Placing an order ------------------------------------------------------------------------------------


@dataclass
class DraftLine:
    """One line to place. `source_location_id` pins the source (else the sourcing rules choose);
    `reservation_id` converts a cart hold (its location is the source)."""

    variant_id: int
    quantity: int
    kind: str = FulfilmentKind.TAKE_NOW
    source_location_id: int | None = None
    pickup_location_id: int | None = None
    reservation_id: int | None = None
    discount: Discount = NO_DISCOUNT
    discount_approved_by: Any = None
    eta: date | None = None
    unit_price: Decimal | None = None  # online orders only: the price the shop charged (incl. tax)


def _unit_price(draft: OrderDraft, part: _Part) -> Decimal:
    """The price a part sells at: the online shop's price for online orders, else the catalogue's."""
    charged = draft.lines[part.draft_index].unit_price
    return charged if charged is not None else part.variant.price


@dataclass
class TenderInput:
    tender: str
    amount: Decimal
    card_last4: str = ""
    card_brand: str = ""
    terminal_ref: str = ""
    cash_tendered: Decimal | None = None
    gift_card_code: str = ""
    loyalty_points: int | None = None


@dataclass
class Address:
    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postcode: str = ""
    country: str = "US"

    @property
    def complete(self) -> bool:
        return bool(self.line1.strip() and self.city.strip() and self.postcode.strip())


@dataclass
class OrderDraft:
    idempotency_key: str
    lines: list[DraftLine]
    tenders: list[TenderInput]
    location_id: int | None = None  # where it is sold (None: online)
    channel: str = Channel.STORE
    customer_id: int | None = None
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    address: Address = field(default_factory=Address)
    order_discount: Discount = NO_DISCOUNT
    order_discount_approved_by: Any = None
    external_ref: str = ""


@dataclass
class PlaceResult:
    order: Order
    created: bool


@dataclass
class _Part:
    """A line as placed: one draft line, or one part of a line split over sources."""

    draft_index: int
    variant: Variant
    kind: str
    pickup_id: int | None
    discount: Discount
    quantity: int
    source_id: int
    reservation_id: int | None
    eta: date | None


def _idempotency_key(raw: str) -> str:
    key = (raw or "").strip()
    if not key or len(key) > 200:
        raise InvalidOrderError("Placing an order needs an idempotency key (at most 200 characters).")
    return key


def order_place(*, actor: Any, draft: OrderDraft) -> PlaceResult:
    """Place an order atomically: lines, stock, payments, events, the customer's purchase record.

    Idempotent by `draft.idempotency_key`: a repeat (or a concurrent double tap) returns the first
    order with `created=False`. When a racing order took stock that this one's sourcing planned,
    the plan is made again (up to PLACE_ATTEMPTS) unless the sources were fixed (a cart's holds, a
    pinned source); the error then says where else the variant is available.

    Raises InvalidOrderError, CustomerRequiredError, AddressRequiredError, ApprovalRequiredError,
    PaymentMismatchError, InvalidTenderError, GiftCardError, OutOfStockError.
    """
    key = _idempotency_key(draft.idempotency_key)
    existing = Order.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return PlaceResult(existing, created=False)
    _actor(actor)
    _validate_draft(draft)
    pinned = all(line.source_location_id or line.kind == FulfilmentKind.TAKE_NOW for line in draft.lines)
    attempts = 1 if pinned else PLACE_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return _place(actor=actor, draft=draft, key=key)
        except OutOfStockError as error:
            _record_lost_demand(error)
            raise
        except InsufficientStockError as error:
            if attempt < attempts:
                continue
            raise _out_of_stock(error, draft) from error
        except IntegrityError:
            existing = Order.objects.filter(idempotency_key=key).first()
            if existing is None:
                raise
            return PlaceResult(existing, created=False)
    raise AssertionError("unreachable")  # pragma: no cover


def _validate_draft(draft: OrderDraft) -> None:
    if not draft.lines:
        raise InvalidOrderError("An order needs at least one line.")
    if len(draft.lines) > MAX_LINES:
        raise InvalidOrderError(f"An order has at most {MAX_LINES} lines.")
    if draft.channel not in Channel.values:
        raise InvalidOrderError("Unknown sales channel.")
    if draft.channel != Channel.ONLINE and draft.location_id is None:
        raise InvalidOrderError("A store order needs the location it is sold at.")
    for index, line in enumerate(draft.lines):
        if line.kind not in FulfilmentKind.values:
            raise InvalidOrderError("Each line is take now, ship or collect.", {"line": index})
        if (
            isinstance(line.quantity, bool)
            or not isinstance(line.quantity, int)
            or not 0 < line.quantity <= MAX_QUANTITY
        ):
            raise InvalidOrderError(f"Line {index + 1}: quantity must be 1 to {MAX_QUANTITY}.", {"line": index})
        if line.kind == FulfilmentKind.TAKE_NOW and draft.location_id is None:
            raise InvalidOrderError("Take-now lines are sold in a store.", {"line": index})
        if line.kind == FulfilmentKind.COLLECT and not (line.pickup_location_id or draft.location_id):
            raise InvalidOrderError(f"Line {index + 1}: choose where to collect.", {"line": index})
        if line.unit_price is not None and (
            draft.channel != Channel.ONLINE
            or not isinstance(line.unit_price, Decimal)
            or line.unit_price < 0
            or line.unit_price != cents(line.unit_price)
        ):
            raise InvalidOrderError(
                f"Line {index + 1}: a charged price is for online orders, in cents, zero or more.", {"line": index}
            )
        if line.reservation_id is not None and line.source_location_id is None:
            raise InvalidOrderError("A held line names the location of its hold.", {"line": index})
    kinds = {line.kind for line in draft.lines}
    if kinds & {FulfilmentKind.SHIP, FulfilmentKind.COLLECT} and draft.customer_id is None:
        raise CustomerRequiredError()
    if FulfilmentKind.SHIP in kinds and not draft.address.complete:
        raise AddressRequiredError()
    if len(draft.tenders) > 10:
        raise InvalidTenderError("At most 10 tenders per order.")


def _local_today(selling: Location | None) -> date:
    """The selling store's date (ETAs count from it), whether a tablet or the API places the order."""
    return timezone.localdate(timezone=selling.zone) if selling is not None else timezone.localdate(timezone=UTC)


def _plan_parts(draft: OrderDraft, variants: dict[int, Variant], selling: Location | None) -> list[_Part]:
    """Turn draft lines into placed parts, sourcing the lines whose source is not fixed."""
    parts: list[_Part] = []
    unsourced = [
        i for i, line in enumerate(draft.lines) if line.kind != FulfilmentKind.TAKE_NOW and not line.source_location_id
    ]
    candidates = (
        sourcing_candidates(variant_ids={draft.lines[i].variant_id for i in unsourced}, origin=selling)
        if unsourced
        else {}
    )
    ship_indexes = [i for i in unsourced if draft.lines[i].kind == FulfilmentKind.SHIP]
    ship_plans = dict(
        zip(
            ship_indexes,
            sourcing.source_ship_order(
                [(draft.lines[i].variant_id, draft.lines[i].quantity) for i in ship_indexes], candidates
            ),
            strict=True,
        )
    )
    today = _local_today(selling)
    for index, line in enumerate(draft.lines):
        variant = variants[line.variant_id]
        pickup = (line.pickup_location_id or draft.location_id) if line.kind == FulfilmentKind.COLLECT else None
        # The rest of a part: quantity, source, reservation, eta.
        part = partial(_Part, index, variant, line.kind, pickup, line.discount)
        if line.kind == FulfilmentKind.TAKE_NOW:
            assert draft.location_id is not None
            parts.append(part(line.quantity, draft.location_id, None, today))
            continue
        if line.source_location_id:
            parts.append(part(line.quantity, line.source_location_id, line.reservation_id, line.eta))
            continue
        if line.kind == FulfilmentKind.SHIP:
            plan = ship_plans[index]
        else:
            assert pickup is not None
            plan = sourcing.source_collect(
                candidates.get(line.variant_id, []), line.quantity, pickup_location_id=pickup
            )
        if not plan.complete:
            found = sum(a.quantity for a in plan.allocations)
            message = (
                f"Only {found} of {variant.sku} can be {'shipped' if line.kind == FulfilmentKind.SHIP else 'collected'}"
                f" (wanted {line.quantity}). " + sourcing.where_else(candidates.get(line.variant_id, []))
            )
            lost = {
                "variant_id": variant.pk,
                "quantity": plan.shortfall,
                "location_id": draft.location_id,
                "kind": line.kind,
            }
            raise OutOfStockError(
                message, {"sku": variant.sku, "requested": line.quantity, "line": index, "lost": lost}
            )
        for allocation in plan.allocations:
            parts.append(
                part(allocation.quantity, allocation.location_id, None, today + timedelta(days=allocation.eta_days))
            )
    return parts


def _tax_location_id(part: _Part, selling_id: int | None) -> int:
    """Whose tax rate a line carries: where the customer takes the goods (the selling store for
    take-now lines, the pickup store for collect lines) or, for shipments, the source."""
    if part.kind == FulfilmentKind.TAKE_NOW and selling_id is not None:
        return selling_id
    if part.kind == FulfilmentKind.COLLECT and part.pickup_id:
        return part.pickup_id
    return part.source_id


def _price_parts(draft: OrderDraft, parts: list[_Part], locations: dict[int, Location]) -> pricing.PricedOrder:
    """Price the parts. A line split over sources shares an amount discount by quantity."""
    by_draft: dict[int, list[_Part]] = defaultdict(list)
    for part in parts:
        by_draft[part.draft_index].append(part)
    inputs = []
    for part in parts:
        discount = part.discount
        siblings = by_draft[part.draft_index]
        if discount.kind == "amount" and len(siblings) > 1:
            shares = pricing.split_amount(discount.value, [p.quantity for p in siblings])
            discount = Discount("amount", shares[siblings.index(part)])
        inputs.append(
            pricing.LineInput(
                unit_price=_unit_price(draft, part),
                quantity=part.quantity,
                tax_rate=locations[_tax_location_id(part, draft.location_id)].tax_rate,
                discount=discount,
            )
        )
    return pricing.price_order(inputs, draft.order_discount)


def _check_discount_approvals(draft: OrderDraft, parts: list[_Part], priced: pricing.PricedOrder) -> None:
    limit = pricing.approval_threshold_percent()
    for part, line in zip(parts, priced.lines, strict=True):
        if line.line_discount_percent > limit:
            approver = draft.lines[part.draft_index].discount_approved_by
            if approver is None:
                raise ApprovalRequiredError(round(line.line_discount_percent, 1), limit)
            _check_approver(approver, draft.location_id)
    if priced.order_discount_percent > limit:
        if draft.order_discount_approved_by is None:
            raise ApprovalRequiredError(round(priced.order_discount_percent, 1), limit)
        _check_approver(draft.order_discount_approved_by, draft.location_id)


def _check_tenders(draft: OrderDraft, total: Decimal) -> None:
    paid = ZERO
    for index, tender in enumerate(draft.tenders):
        if tender.tender not in (
            Tender.CARD,
            Tender.CASH,
            Tender.GIFT_CARD,
            Tender.STORE_CREDIT,
            Tender.LOYALTY,
            Tender.ONLINE,
        ):
            raise InvalidTenderError("Unknown tender.", {"tender": index})
        amount = tender.amount
        if not isinstance(amount, Decimal) or amount <= 0 or amount != cents(amount):
            raise InvalidTenderError("Each tender pays an amount above zero, in cents.", {"tender": index})
        card_ok = (
            tender.card_last4.isascii()
            and tender.card_last4.isdigit()
            and len(tender.card_last4) == 4
            and tender.terminal_ref.strip()
        )
        if tender.tender == Tender.CARD and not card_ok:
            raise InvalidTenderError(
                "Card: the terminal reference and the last four digits are needed.", {"tender": index}
            )
        if tender.tender == Tender.CASH:
            tendered = tender.cash_tendered if tender.cash_tendered is not None else amount
            if tendered < amount:
                raise InvalidTenderError("Cash: the amount tendered is less than the amount paid.", {"tender": index})
        if tender.tender in (Tender.GIFT_CARD, Tender.STORE_CREDIT) and not tender.gift_card_code.strip():
            raise InvalidTenderError("Gift card: enter the card's code.", {"tender": index})
        if tender.tender == Tender.LOYALTY:
            if draft.customer_id is None or not tender.loyalty_points or tender.loyalty_points <= 0:
                raise InvalidTenderError("Points: choose the customer and how many points to use.", {"tender": index})
            from customers.services import loyalty_points_value

            if loyalty_points_value(points=tender.loyalty_points) != amount:
                raise InvalidTenderError("Points: the amount does not match the points' value.", {"tender": index})
        if tender.tender == Tender.ONLINE and draft.channel != Channel.ONLINE:
            raise InvalidTenderError("Online payments are for online orders.", {"tender": index})
        paid += amount
    if paid != total:
        raise PaymentMismatchError(total=total, paid=paid)


def _place(*, actor: Any, draft: OrderDraft, key: str) -> PlaceResult:
    """One attempt at placing (see order_place). Every query count here is independent of lines."""
    user, label = _actor(actor)
    variant_ids = {line.variant_id for line in draft.lines}
    variants = Variant.objects.select_related("product").in_bulk(variant_ids)
    for index, line in enumerate(draft.lines):
        variant = variants.get(line.variant_id)
        if variant is None or not variant.is_active:
            raise InvalidOrderError(f"Line {index + 1}: that product is not for sale.", {"line": index})
    locations = Location.objects.in_bulk()  # a few dozen rows: tax rates, names, capabilities
    selling = locations.get(draft.location_id) if draft.location_id else None
    if draft.location_id and (selling is None or not selling.is_active):
        raise InvalidOrderError("That store is not active.")
    if selling is not None and not selling.sells_in_store:
        raise InvalidOrderError(f"{selling.name} does not sell in store.")
    parts = _plan_parts(draft, variants, selling)
    for part in parts:
        for location_id in (part.source_id, part.pickup_id):
            if location_id and (location_id not in locations or not locations[location_id].is_active):
                raise InvalidOrderError("A line names a location that is not active.")
        if part.kind == FulfilmentKind.COLLECT and part.pickup_id and not locations[part.pickup_id].offers_pickup:
            raise InvalidOrderError(f"{locations[part.pickup_id].name} does not offer collection.")
    priced = _price_parts(draft, parts, locations)
    _check_discount_approvals(draft, parts, priced)
    _check_tenders(draft, priced.total)
    now = timezone.now()
    channel = draft.channel
    if channel == Channel.STORE and any(part.kind != FulfilmentKind.TAKE_NOW for part in parts):
        channel = Channel.ENDLESS_AISLE
    address = draft.address if any(part.kind == FulfilmentKind.SHIP for part in parts) else Address(country="")

    groups: dict[tuple[str, int, int | None], list[int]] = defaultdict(list)
    for index, part in enumerate(parts):
        groups[(part.kind, part.source_id, part.pickup_id)].append(index)
    first_status = {
        kind: Status.COLLECTED if kind == FulfilmentKind.TAKE_NOW else Status.ALLOCATED for kind, _, _ in groups
    }
    with transaction.atomic():
        # The order row first: a concurrent duplicate blocks here on the unique key until the first
        # commits, then fails (IntegrityError) before touching stock or money.
        order = Order.objects.create(
            channel=channel,
            status=order_status_for((kind, first_status[kind]) for kind, _, _ in groups),
            location=selling,
            customer_id=draft.customer_id,
            contact_name=draft.contact_name[:200],
            contact_email=draft.contact_email[:254],
            contact_phone=draft.contact_phone[:20],
            ship_name=address.name[:200],
            ship_line1=address.line1[:200],
            ship_line2=address.line2[:200],
            ship_city=address.city[:100],
            ship_region=address.region[:100],
            ship_postcode=address.postcode[:20],
            ship_country=address.country[:2],
            currency=next(iter(variants.values())).currency,
            subtotal=priced.subtotal,
            discount_total=priced.discount_total,
            total=priced.total,
            tax_total=priced.tax_total,
            paid_total=priced.total,
            order_discount_kind=draft.order_discount.kind if draft.order_discount.is_set else "",
            order_discount_value=draft.order_discount.value if draft.order_discount.is_set else ZERO,
            discount_approved_by=draft.order_discount_approved_by if priced.order_discount else None,
            idempotency_key=key,
            external_ref=draft.external_ref[:64],
            placed_by=user,
            placed_by_label=label,
            placed_at=now,
        )
        reference = _order_reference(order.pk)
        # Fulfilments: one per (kind, source, pickup).
        fulfilments = Fulfilment.objects.bulk_create(
            [
                Fulfilment(
                    order=order,
                    kind=kind,
                    status=first_status[kind],
                    source_location_id=source_id,
                    pickup_location_id=pickup_id,
                    stock_location_id=source_id,
                    eta=max([eta for i in indexes if (eta := parts[i].eta) is not None], default=None),
                    completed_at=now if kind == FulfilmentKind.TAKE_NOW else None,
                )
                for (kind, source_id, pickup_id), indexes in groups.items()
            ]
        )
        fulfilment_of = {
            index: fulfilment
            for fulfilment, indexes in zip(fulfilments, groups.values(), strict=True)
            for index in indexes
        }
        lines = OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order=order,
                    fulfilment=fulfilment_of[index],
                    variant=part.variant,
                    sku=part.variant.sku,
                    name=f"{part.variant.product.name} {part.variant.colour}/{part.variant.size}"[:255],
                    kind=part.kind,
                    source_location_id=part.source_id,
                    quantity=part.quantity,
                    unit_price=_unit_price(draft, part),
                    line_discount=line.line_discount,
                    order_discount_share=line.order_discount_share,
                    total=line.total,
                    tax_rate=locations[_tax_location_id(part, draft.location_id)].tax_rate,
                    tax_amount=line.tax,
                    discount_kind=part.discount.kind if part.discount.is_set else "",
                    discount_value=part.discount.value if part.discount.is_set else ZERO,
                    discount_approved_by=draft.lines[part.draft_index].discount_approved_by
                    if line.line_discount
                    else None,
                    picked_quantity=part.quantity if part.kind == FulfilmentKind.TAKE_NOW else 0,
                    position=index,
                )
                for index, (part, line) in enumerate(zip(parts, priced.lines, strict=True))
            ]
        )
        payments = _take_payments(order, draft, actor=actor, label=label)
        stock.stock_order_place(
            actor=actor,
            lines=[
                OrderStockLine(
                    location_id=part.source_id,
                    variant_id=part.variant.pk,
                    quantity=part.quantity,
                    action="sell" if part.kind == FulfilmentKind.TAKE_NOW else "commit",
                    reservation_id=part.reservation_id,
                )
                for part in parts
            ],
            reference=reference,
            idempotency_key=f"order:{key}",
            # This transaction rolls back as a whole on any error, and the order's unique key
            # (inserted above) already makes a repeat impossible: skip the savepoint and the check.
            savepoint=False,
            check_existing=False,
        )
        events = [
            _event(
                order.pk,
                "placed",
                f"Order placed at {selling.name if selling else 'the online store'}: {len(parts)} line(s), "
                f"{order.total} {order.currency}.",
                actor=actor,
                location_id=order.location_id,
                at=now,
            )
        ]
        for fulfilment in fulfilments:
            source = locations[fulfilment.source_location_id]
            if fulfilment.kind == FulfilmentKind.TAKE_NOW:
                message = f"Taken now at {source.name}."
            elif fulfilment.kind == FulfilmentKind.SHIP:
                message = f"Allocated: ships from {source.name}."
            else:
                pickup = locations[fulfilment.pickup_location_id or fulfilment.source_location_id]
                message = f"Allocated: collect at {pickup.name}" + (
                    f", stock coming from {source.name}." if fulfilment.needs_transfer else "."
                )
            events.append(
                _event(
                    order.pk,
                    fulfilment.status,
                    message,
                    actor=actor,
                    fulfilment_id=fulfilment.pk,
                    location_id=fulfilment.source_location_id,
                    at=now,
                )
            )
        for payment in payments:
            events.append(
                _event(
                    order.pk,
                    "payment",
                    f"Paid {payment.amount} by {payment.get_tender_display().lower()}.",
                    actor=actor,
                    location_id=order.location_id,
                    data={"payment": payment.pk},
                    at=now,
                )
            )
        if priced.discount_total:
            approvers = {
                line.discount_approved_by.get_username()
                for line in draft.lines
                if line.discount_approved_by is not None
            } | ({draft.order_discount_approved_by.get_username()} if draft.order_discount_approved_by else set())
            events.append(
                _event(
                    order.pk,
                    "discount",
                    f"Discounts of {priced.discount_total}"
                    + (f" approved by {', '.join(sorted(approvers))}." if approvers else "."),
                    actor=actor,
                    location_id=order.location_id,
                    at=now,
                )
            )
        for fulfilment in fulfilments:
            if fulfilment.needs_transfer:
                events.append(_request_transfer(order, fulfilment, parts, groups, actor=actor, at=now))
        OrderEvent.objects.bulk_create(events)
        if order.customer_id or order.contact_email:
            # One task after commit: the customer's purchase record and points (customers' own
            # transaction, idempotent by key - the sale neither waits on nor locks their ledger),
            # then the confirmation email (sent once).
            _queue("order_placed_followups", order_id=order.pk)
    logger.info("order %s placed: %s parts, total %s", order.number, len(parts), order.total)
    # The caller shows the lines and fulfilments it just placed: no query to read them back.
    order._prefetched_objects_cache = {  # type: ignore[attr-defined]
        "lines": _cached(OrderLine.objects.filter(order=order).order_by("position", "pk"), lines),
        "fulfilments": _cached(Fulfilment.objects.filter(order=order).order_by("pk"), fulfilments),
    }
    return PlaceResult(order, created=True)


def _cached(queryset: Any, rows: list[Any]) -> Any:
    """A queryset whose rows are already known (what prefetch_related leaves behind)."""
    queryset._result_cache = rows
    queryset._prefetch_done = True
    return queryset


def _take_payments(order: Order, draft: OrderDraft, *, actor: Any, label: str) -> list[Payment]:
    """Create the payment rows; redeem gift cards (locked, balance guarded) and loyalty points."""
    codes = sorted({t.gift_card_code.strip().upper() for t in draft.tenders if t.gift_card_code.strip()})
    cards = gift_cards_lock(codes=codes) if codes else {}
    payments: list[Payment] = []
    entries: list[GiftCardEntry] = []
    for position, tender in enumerate(draft.tenders):
        payment = Payment(order=order, tender=tender.tender, amount=tender.amount, position=position)
        if tender.tender == Tender.CARD:
            payment.card_last4 = tender.card_last4
            payment.card_brand = tender.card_brand[:20]
            payment.terminal_ref = tender.terminal_ref.strip()[:64]
        elif tender.tender == Tender.CASH:
            tendered = tender.cash_tendered if tender.cash_tendered is not None else tender.amount
            payment.cash_tendered = tendered
            payment.change_given = tendered - tender.amount
        elif tender.tender in (Tender.GIFT_CARD, Tender.STORE_CREDIT):
            code = tender.gift_card_code.strip().upper()
            card = cards.get(code)
            if card is None or not card.is_active:
                raise GiftCardError("That gift card or credit code is not valid.", {"tender": position})
            if card.balance < tender.amount:
                raise GiftCardError(
                    f"The card …{code[-4:]} has {card.balance} left.",
                    {"tender": position, "balance": str(card.balance)},
                )
            card.balance -= tender.amount
            payment.gift_card = card
            entries.append(
                GiftCardEntry(
                    card=card,
                    amount=-tender.amount,
                    balance_after=card.balance,
                    reason="redeem",
                    order=order,
                    actor_label=label,
                    idempotency_key=f"order:{order.pk}:tender:{position}",
                )
            )
        elif tender.tender == Tender.LOYALTY:
            from customers.services import loyalty_redeem

            assert order.customer_id is not None and tender.loyalty_points is not None
            loyalty_redeem(
                customer_id=order.customer_id,
                points=tender.loyalty_points,
                order_ref=order.number,
                idempotency_key=f"order:{order.pk}:tender:{position}",
                actor=actor,
            )
            payment.loyalty_points = tender.loyalty_points
        payments.append(payment)
    if cards:
        GiftCard.objects.bulk_update(list(cards.values()), ["balance", "updated_at"])
        GiftCardEntry.objects.bulk_create(entries)
    return Payment.objects.bulk_create(payments)


def _request_transfer(
    order: Order,
    fulfilment: Fulfilment,
    parts: list[_Part],
    groups: dict[tuple[str, int, int | None], list[int]],
    *,
    actor: Any,
    at: Any,
) -> OrderEvent:
    """Ask transfers to bring a collect fulfilment's committed units to the pickup store."""
    from transfers.services import transfer_request_for_order

    indexes = groups[(fulfilment.kind, fulfilment.source_location_id, fulfilment.pickup_location_id)]
    quantities: dict[int, int] = defaultdict(int)
    for index in indexes:
        quantities[parts[index].variant.pk] += parts[index].quantity
    assert fulfilment.pickup_location_id is not None
    transfer = transfer_request_for_order(
        actor=actor,
        origin_id=fulfilment.source_location_id,
        destination_id=fulfilment.pickup_location_id,
        lines=sorted(quantities.items()),
        reference=_order_reference(order.pk),
        idempotency_key=f"order:{order.pk}:fulfilment:{fulfilment.pk}",
    )
    code = getattr(transfer, "code", "") or str(transfer.pk)
    Fulfilment.objects.filter(pk=fulfilment.pk).update(transfer_ref=code)
    fulfilment.transfer_ref = code
    return _event(
        order.pk,
        "transfer_requested",
        f"Transfer {code} requested to bring the stock to the pickup store.",
        actor=actor,
        fulfilment_id=fulfilment.pk,
        location_id=fulfilment.source_location_id,
        data={"transfer": code},
        at=at,
    )


def order_record_customer_purchase(*, order_id: int) -> bool:
    """Tell customers what an order's customer bought (their history, spend, tier) and credit the
    points it earns. Runs after the order committed (a Celery task); idempotent by key, so a retry
    records nothing twice. Points are earned on what was paid with money, not with points."""
    from customers.services import customer_record_purchase, loyalty_earn

    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.customer_id is None:
        return False
    lines = list(OrderLine.objects.filter(order=order).select_related("variant__product").order_by("position", "pk"))
    paid_with_points = sum((p.amount for p in Payment.objects.filter(order=order, tender=Tender.LOYALTY)), ZERO)
    actor = SystemActor("orders-purchase-record")
    customer_record_purchase(
        customer_id=order.customer_id,
        order_ref=order.number,
        channel="online" if order.channel == Channel.ONLINE else "store",
        location_id=order.location_id,
        amount=order.total,
        lines=[
            (line.variant_id, line.variant.product.brand, line.variant.product.category, line.quantity, line.total)
            for line in lines
        ],
        occurred_at=order.placed_at,
        idempotency_key=f"order:{order.pk}:purchase",
        actor=actor,
    )
    earning = order.total - paid_with_points
    if earning > 0:
        loyalty_earn(
            customer_id=order.customer_id,
            amount=earning,
            order_ref=order.number,
            idempotency_key=f"order:{order.pk}:earn",
            actor=actor,
        )
    return True


def _record_lost_demand(error: OutOfStockError) -> None:
    """Remember units asked for that no location could give (insights reads them as lost demand).

    Called where the error leaves the service, after its own transaction rolled back; inside a
    caller's transaction that rolls back too, the record goes with it (a retried sale is not
    counted twice)."""
    lost = error.extra.pop("lost", None)
    if not lost or lost.get("quantity", 0) <= 0:
        return
    LostDemand.objects.create(
        location_id=lost.get("location_id"),
        variant_id=lost["variant_id"],
        quantity=lost["quantity"],
        fulfilment=lost.get("kind", FulfilmentKind.SHIP),
        occurred_at=timezone.now(),
    )


def _out_of_stock(error: InsufficientStockError, draft: OrderDraft) -> OutOfStockError:
    """Turn the engine's shortage into a message saying where else the variant is available."""
    extra = dict(error.extra)
    sku = extra.get("sku", "")
    variant = Variant.objects.filter(sku=sku).first() if sku else None
    if variant is None:
        return OutOfStockError(error.message, extra)
    selling = Location.objects.filter(pk=draft.location_id).first() if draft.location_id else None
    candidates = sourcing_candidates(variant_ids=[variant.pk], origin=selling).get(variant.pk, [])
    elsewhere = sourcing.where_else(candidates, exclude=[extra.get("location_id", 0)])
    extra["elsewhere"] = [
        {"location_id": c.location_id, "location": c.code, "name": c.name, "available": c.available}
        for c in candidates
        if c.location_id != extra.get("location_id")
    ]
    return OutOfStockError(f"{error.message} {elsewhere}", extra)


# --- Fulfilment: the state machine ------------------------------------------------------------------------

_TIMESTAMP_FOR: dict[str, str] = {Status.SHIPPED: "shipped_at", Status.READY_FOR_PICKUP: "ready_at"}
_DONE = (Status.DELIVERED, Status.COLLECTED)


def _transition(
    fulfilment: Fulfilment,
    target: str,
    *,
    actor: Any,
    message: str,
    location_id: int | None = None,
    data: dict[str, Any] | None = None,
    extra_fields: Sequence[str] = (),
) -> list[OrderEvent]:
    """Move a locked fulfilment to `target` (the only way its status changes), then recompute the
    order's status. Caller holds the fulfilment's lock. Returns the events written."""
    if not can_transition(fulfilment.kind, fulfilment.status, target):
        raise InvalidTransitionError(kind=fulfilment.kind, current=fulfilment.status, target=target)
    now = timezone.now()
    previous = fulfilment.status
    fulfilment.status = target
    fields = ["status", "updated_at", *extra_fields]
    if target in _TIMESTAMP_FOR:
        setattr(fulfilment, _TIMESTAMP_FOR[target], now)
        fields.append(_TIMESTAMP_FOR[target])
    if target in _DONE:
        fulfilment.completed_at = now
        fields.append("completed_at")
    fulfilment.save(update_fields=fields)
    events = [
        _event(
            fulfilment.order_id,
            target,
            message,
            actor=actor,
            fulfilment_id=fulfilment.pk,
            location_id=location_id,
            data={"from": previous, **(data or {})},
            at=now,
        )
    ]
    events.extend(_refresh_order_status(fulfilment.order_id, actor=actor, at=now))
    OrderEvent.objects.bulk_create(events)
    live_publish(
        topic="orders",
        payload={
            "order": fulfilment.order_id,
            "fulfilment": fulfilment.pk,
            "action": target,
            "location": fulfilment.source_location_id,
        },
    )
    return events


def _refresh_order_status(order_id: int, *, actor: Any, at: Any) -> list[OrderEvent]:
    statuses = list(Fulfilment.objects.filter(order_id=order_id).values_list("kind", "status"))
    status = order_status_for(statuses)
    updated = Order.objects.filter(pk=order_id).exclude(status=status).update(status=status, updated_at=at)
    if not updated:
        return []
    return [
        _event(
            order_id,
            "status",
            f"Order is now {Status(status).label.lower()}.",
            actor=actor,
            at=at,
            data={"status": status},
        )
    ]


def _locked_fulfilment(fulfilment_id: int) -> Fulfilment:
    from .errors import FulfilmentNotFoundError

    fulfilment = fulfilment_lock(fulfilment_id=fulfilment_id)
    if fulfilment is None:
        raise FulfilmentNotFoundError(fulfilment_id)
    return fulfilment


def _open_lines(fulfilment: Fulfilment) -> list[OrderLine]:
    return [line for line in order_lines_lock(order_id=fulfilment.order_id) if line.fulfilment_id == fulfilment.pk]


@dataclass
class PickResult:
    fulfilment: Fulfilment
    line: OrderLine
    complete: bool  # every open unit of the fulfilment is picked


def fulfilment_pick(*, actor: Any, fulfilment_id: int, code: str) -> PickResult:
    """Confirm one unit by scanning its barcode (or typing its SKU). Starts picking if needed.

    Raises PickError when the code is not on the pick list or that line is already fully picked.
    """
    code = (code or "").strip()
    if not code:
        raise PickError("Scan a barcode or type a SKU.")
    with transaction.atomic():
        fulfilment = _locked_fulfilment(fulfilment_id)
        if fulfilment.status == Status.ALLOCATED:
            _transition(
                fulfilment,
                Status.PICKING,
                actor=actor,
                message="Picking started.",
                location_id=fulfilment.source_location_id,
            )
        if fulfilment.status != Status.PICKING:
            raise PickError(f"This fulfilment is {fulfilment.get_status_display().lower()}, not being picked.")
        lines = _open_lines(fulfilment)
        variants = {v.pk: v for v in Variant.objects.filter(pk__in=[line.variant_id for line in lines])}
        matching = [
            line for line in lines if code in (line.sku, variants[line.variant_id].barcode or "") and line.open_quantity
        ]
        if not matching:
            raise PickError(f"{code} is not on this pick list.", {"code": code})
        line = next((m for m in matching if m.picked_quantity < m.open_quantity), None)
        if line is None:
            raise PickError(f"All units of {matching[0].sku} are already picked.", {"code": code})
        line.picked_quantity += 1
        line.save(update_fields=["picked_quantity"])
        complete = all(item.picked_quantity >= item.open_quantity for item in lines)
        return PickResult(fulfilment=fulfilment, line=line, complete=complete)


def fulfilment_pack(*, actor: Any, fulfilment_id: int) -> Fulfilment:
    """Every open unit was scanned: the parcel is packed. Raises PickError if units are missing."""
    with transaction.atomic():
        fulfilment = _locked_fulfilment(fulfilment_id)
        lines = _open_lines(fulfilment)
        missing = sum(max(0, line.open_quantity - line.picked_quantity) for line in lines)
        if fulfilment.status == Status.PICKING and missing:
            raise PickError(f"{missing} unit(s) still to pick before packing.", {"missing": missing})
        _transition(
            fulfilment, Status.PACKED, actor=actor, message="Packed.", location_id=fulfilment.source_location_id
        )
        return fulfilment


def fulfilment_ship(*, actor: Any, fulfilment_id: int, carrier: str, tracking_number: str) -> Fulfilment:
    """The parcel left with a carrier: committed stock leaves the source; the customer is emailed."""
    carrier = (carrier or "").strip()[:40]
    tracking_number = (tracking_number or "").strip()[:64]
    if not carrier or not tracking_number:
        raise InvalidOrderError("Enter the carrier and the tracking number.")
    with transaction.atomic():
        fulfilment = _locked_fulfilment(fulfilment_id)
        if fulfilment.kind != FulfilmentKind.SHIP:
            raise InvalidTransitionError(kind=fulfilment.kind, current=fulfilment.status, target=Status.SHIPPED)
        lines = _open_lines(fulfilment)
        fulfilment.carrier = carrier
        fulfilment.tracking_number = tracking_number
        _transition(
            fulfilment,
            Status.SHIPPED,
            actor=actor,
            message=f"Shipped with {carrier}, tracking {tracking_number}.",
            location_id=fulfilment.source_location_id,
            data={"carrier": carrier, "tracking_number": tracking_number},
            extra_fields=["carrier", "tracking_number"],
        )
        _fulfil_stock(fulfilment, lines, actor=actor, action="ship")
        if fulfilment.order.contact_email:
            _queue("send_shipped", fulfilment_id=fulfilment.pk)
        return fulfilment


def _fulfil_stock(fulfilment: Fulfilment, lines: list[OrderLine], *, actor: Any, action: str) -> None:
    quantities: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.open_quantity:
            quantities[line.variant_id] += line.open_quantity
    if not quantities:
        return
    stock.stock_apply(
        actor=actor,
        changes=[
            LevelChange(fulfilment.stock_location_id, variant_id, {"committed": -q, "on_hand": -q})
            for variant_id, q in sorted(quantities.items())
        ],
        reason=MovementReason.FULFIL,
        reference=_order_reference(fulfilment.order_id),
        idempotency_key=f"order:{fulfilment.order_id}:fulfilment:{fulfilment.pk}:{action}",
    )


def fulfilment_deliver(*, actor: Any, fulfilment_id: int) -> Fulfilment:
    """The carrier reports the parcel delivered."""
    with transaction.atomic():
        fulfilment = _locked_fulfilment(fulfilment_id)
        _transition(fulfilment, Status.DELIVERED, actor=actor, message="Delivered.")
        return fulfilment


def _collection_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def fulfilment_mark_ready(*, actor: Any, fulfilment_id: int) -> Fulfilment:
    """The goods wait at the pickup counter: a collection code is drawn and emailed to the customer.

    Raises PickError while the stock is still on its way from another store (the transfer sync
    marks it ready when it arrives) or, once picking started, while units are still to pick;
    InvalidTransitionError for anything but a collect fulfilment before pickup.
    """
    with transaction.atomic():
        fulfilment = _locked_fulfilment(fulfilment_id)
        if fulfilment.kind != FulfilmentKind.COLLECT:
            raise InvalidTransitionError(
                kind=fulfilment.kind, current=fulfilment.status, target=Status.READY_FOR_PICKUP
            )
        if fulfilment.stock_location_id != fulfilment.pickup_location_id:
            raise PickError(
                "The stock is still on its way from another store: it is marked ready when the transfer arrives.",
                {"transfer": fulfilment.transfer_ref},
            )
        missing = sum(max(0, line.open_quantity - line.picked_quantity) for line in _open_lines(fulfilment))
        if fulfilment.status == Status.PICKING and missing:  # as for packing: once scanning started, finish it
            raise PickError(f"{missing} unit(s) still to pick before the order is ready.", {"missing": missing})
        _make_ready(fulfilment, actor=actor)
        return fulfilment


def _make_ready(fulfilment: Fulfilment, *, actor: Any) -> None:
    fulfilment.collection_code = _collection_code()
    fulfilment.code_attempts = 0
    _transition(
        fulfilment,
        Status.READY_FOR_PICKUP,
        actor=actor,
        message="Ready for pickup; the customer was sent a collection code.",
        location_id=fulfilment.pickup_location_id,
        extra_fields=["collection_code", "code_attempts"],
    )
    if fulfilment.order.contact_email:
        _queue("send_ready_for_pickup", fulfilment_id=fulfilment.pk)


def fulfilment_collect(*, actor: Any, fulfilment_id: int, code: str) -> Fulfilment:
    """The customer collects: the code they were sent must match. After MAX_CODE_ATTEMPTS wrong
    codes the fulfilment is locked until a manager sends a new code (fulfilment_resend_code)."""
    code = (code or "").strip()
    with transaction.atomic():
        fulfilment = _locked_fulfilment(fulfilment_id)
        if fulfilment.status != Status.READY_FOR_PICKUP:
            raise InvalidTransitionError(kind=fulfilment.kind, current=fulfilment.status, target=Status.COLLECTED)
        if fulfilment.code_attempts >= MAX_CODE_ATTEMPTS:
            raise CollectionCodeError("Too many wrong codes: a manager must send the customer a new code.")
        # Bytes: compare_digest raises TypeError on a str with non-ASCII characters (a 500 for 'é').
        if not (code and hmac.compare_digest(code.encode(), fulfilment.collection_code.encode())):
            Fulfilment.objects.filter(pk=fulfilment.pk).update(code_attempts=F("code_attempts") + 1)
            wrong = True
        else:
            wrong = False
            lines = _open_lines(fulfilment)
            _transition(
                fulfilment,
                Status.COLLECTED,
                actor=actor,
                message="Collected by the customer (code checked).",
                location_id=fulfilment.pickup_location_id,
            )
            _fulfil_stock(fulfilment, lines, actor=actor, action="collect")
    if wrong:  # the attempt is counted (committed above); then say no
        left = MAX_CODE_ATTEMPTS - fulfilment.code_attempts - 1
        raise CollectionCodeError(f"That code does not match. {max(left, 0)} attempt(s) left.", {"attempts_left": left})
    return fulfilment


def fulfilment_resend_code(*, actor: Any, fulfilment_id: int) -> Fulfilment:
    """Draw a new collection code and email it (a manager unlocks a fulfilment after wrong codes)."""
    with transaction.atomic():
        fulfilment = _locked_fulfilment(fulfilment_id)
        if fulfilment.status != Status.READY_FOR_PICKUP:
            raise InvalidTransitionError(
                kind=fulfilment.kind, current=fulfilment.status, target=Status.READY_FOR_PICKUP
            )
        fulfilment.collection_code = _collection_code()
        fulfilment.code_attempts = 0
        fulfilment.save(update_fields=["collection_code", "code_attempts", "updated_at"])
        OrderEvent.objects.bulk_create(
            [
                _event(
                    fulfilment.order_id,
                    "code_sent",
                    "A new collection code was sent.",
                    actor=actor,
                    fulfilment_id=fulfilment.pk,
                    location_id=fulfilment.pickup_location_id,
                )
            ]
        )
        if fulfilment.order.contact_email:
            _queue("send_ready_for_pickup", fulfilment_id=fulfilment.pk)
        return fulfilment


def fulfilment_transfer_arrived(*, actor: Any, fulfilment_id: int) -> Fulfilment | None:
    """The transfer carrying a collect fulfilment's units was received at the pickup store: the
    committed units are there now, so the fulfilment is ready for pickup. Idempotent (None when
    nothing changed)."""
    with transaction.atomic():
        fulfilment = _locked_fulfilment(fulfilment_id)
        if fulfilment.stock_location_id == fulfilment.pickup_location_id or fulfilment.pickup_location_id is None:
            return None
        fulfilment.stock_location_id = fulfilment.pickup_location_id
        fulfilment.save(update_fields=["stock_location", "updated_at"])
        OrderEvent.objects.bulk_create(
            [
                _event(
                    fulfilment.order_id,
                    "transfer_received",
                    f"Transfer {fulfilment.transfer_ref} arrived.",
                    actor=actor,
                    fulfilment_id=fulfilment.pk,
                    location_id=fulfilment.pickup_location_id,
                )
            ]
        )
        if fulfilment.status in (Status.ALLOCATED, Status.PICKING, Status.PACKED):
            _make_ready(fulfilment, actor=actor)
        return fulfilment


SHORT_TRANSFER_EVENT = "transfer_short"


def fulfilments_sync_transfers() -> int:
    """Mark collect fulfilments ready whose transfer was received (Celery beat). Returns how many.

    Reads transfers' lines for each waiting order (transfers never imports orders).
    """
    from transfers.selectors import transfer_lines_for_reference

    actor = SystemActor("orders-transfer-sync")
    waiting = list(
        Fulfilment.objects.filter(kind=FulfilmentKind.COLLECT, status__in=CANCELLABLE)
        .exclude(transfer_ref="")
        .exclude(stock_location_id=F("pickup_location_id"))
        .values_list("pk", "order_id", "source_location_id", "pickup_location_id")
    )
    done = 0
    for fulfilment_id, order_id, origin_id, pickup_id in waiting:
        reference = _order_reference(order_id)
        lines = [
            line
            for line in transfer_lines_for_reference(reference_type=reference.type, reference_id=reference.id)
            if (line.origin_id, line.destination_id) == (origin_id, pickup_id)
        ]
        # Every unit arrived. A transfer received short leaves the order waiting for a person, who
        # is told once (the order's timeline, the fulfilment page): cancel the line or sell it
        # from what the store has.
        arrived = bool(lines) and all(line.arrived and (line.quantity_received or 0) >= line.quantity for line in lines)
        if arrived and fulfilment_transfer_arrived(actor=actor, fulfilment_id=fulfilment_id) is not None:
            done += 1
        elif lines and all(line.arrived for line in lines):
            _note_short_transfer(fulfilment_id, order_id, pickup_id, lines)
    return done


def _note_short_transfer(fulfilment_id: int, order_id: int, pickup_id: int, lines: list[Any]) -> None:
    if OrderEvent.objects.filter(fulfilment_id=fulfilment_id, kind=SHORT_TRANSFER_EVENT).exists():
        return
    expected = sum(line.quantity for line in lines)
    received = sum(line.quantity_received or 0 for line in lines)
    reference = next((line.transfer_code for line in lines if line.transfer_code), "")
    OrderEvent.objects.create(
        order_id=order_id,
        fulfilment_id=fulfilment_id,
        kind=SHORT_TRANSFER_EVENT,
        message=f"Transfer {reference} arrived short: {received} of {expected} received. The pickup cannot be "
        "made ready: cancel and refund the missing units, or sell them from this store's shelf."[:255],
        data={"expected": expected, "received": received},
        location_id=pickup_id,
        actor_label="system:orders-transfer-sync",
        created_at=timezone.now(),
    )


def _part_label(fulfilment: Fulfilment) -> str:
    """Which part of an order a fulfilment is, for its timeline ("Everything returned." read as the
    whole order when one part of three was)."""
    if fulfilment.kind == FulfilmentKind.TAKE_NOW:
        return f"Taken at {fulfilment.source_location.name}"
    if fulfilment.kind == FulfilmentKind.SHIP:
        return f"Shipment from {fulfilment.source_location.name}"
    return f"Pickup at {(fulfilment.pickup_location or fulfilment.source_location).name}"


def _transfer_state(fulfilment: Fulfilment) -> str:
    """'arrived', 'short' (arrived, fewer units than sent for), 'cancelled', 'open' (not
    dispatched), 'in_transit' or 'none' for a collect fulfilment whose stock comes from another store."""
    from transfers.selectors import transfer_lines_for_reference

    if not fulfilment.needs_transfer:
        return "none"
    if fulfilment.stock_location_id == fulfilment.pickup_location_id:
        return "arrived"
    reference = _order_reference(fulfilment.order_id)
    lines = [
        line
        for line in transfer_lines_for_reference(reference_type=reference.type, reference_id=reference.id)
        if (line.origin_id, line.destination_id) == (fulfilment.source_location_id, fulfilment.pickup_location_id)
    ]
    if not lines:
        return "none"
    if all(line.cancelled for line in lines):
        return "cancelled"
    if all(line.arrived for line in lines):
        return "short" if any((line.quantity_received or 0) < line.quantity for line in lines) else "arrived"
    if any(line.dispatched_at is not None for line in lines):
        return "in_transit"
    return "open"


# --- Refunds against the original tenders -------------------------------------------------------------------

# Money goes back to the original tenders in this order, each up to what it has left: cards, then
# cash, then gift cards and store credit, then points (which can only go back whole).
_REFUND_ORDER: dict[str, int] = {
    Tender.CARD: 0,
    Tender.ONLINE: 0,
    Tender.CASH: 1,
    Tender.GIFT_CARD: 2,
    Tender.STORE_CREDIT: 2,
    Tender.LOYALTY: 3,
}


def _refund(
    order: Order,
    amount: Decimal,
    *,
    reason: str,
    actor: Any,
    location_id: int | None,
    key: str,
    order_return: OrderReturn | None = None,
    exclude_exchange: bool = True,
) -> list[Refund]:
    """Record `amount` refunded against the order's payments. Caller holds the order's lock."""
    if amount <= 0:
        return []
    _, label = _actor(actor)
    payments = sorted(
        Payment.objects.select_for_update(of=("self",)).filter(order=order).order_by("pk"),
        key=lambda p: (_REFUND_ORDER.get(p.tender, 4), p.position, p.pk),
    )
    if exclude_exchange:
        payments = [p for p in payments if p.tender != Tender.EXCHANGE]
    left = amount
    refunds: list[Refund] = []
    card_ids = [p.gift_card_id for p in payments if p.gift_card_id]
    cards = gift_cards_lock_by_id(ids=card_ids) if card_ids else {}
    entries: list[GiftCardEntry] = []
    for payment in payments:
        if left <= 0:
            break
        take = min(left, payment.refundable)
        if take <= 0:
            continue
        terminal_ref = ""
        if payment.tender == Tender.LOYALTY:
            from customers import conf as loyalty_conf
            from customers.services import loyalty_refund

            value = loyalty_conf.point_value()
            points = int(take / value)
            take = cents(points * value)
            if points <= 0 or order.customer_id is None:
                continue
            loyalty_refund(
                customer_id=order.customer_id,
                order_ref=order.number,
                idempotency_key=f"{key}:points:{payment.pk}",
                actor=actor,
                points=points,
            )
        elif payment.gift_card_id:
            card = cards[payment.gift_card_id]
            card.balance += take
            entries.append(
                GiftCardEntry(
                    card=card,
                    amount=take,
                    balance_after=card.balance,
                    reason="refund",
                    order=order,
                    actor_label=label,
                    idempotency_key=f"{key}:card:{payment.pk}",
                )
            )
        elif payment.tender == Tender.CARD:
            terminal_ref = f"pending:{payment.terminal_ref}"[:64]
        payment.refunded_amount += take
        left -= take
        refunds.append(
            Refund(
                payment=payment,
                order=order,
                order_return=order_return,
                amount=take,
                reason=reason,
                terminal_ref=terminal_ref,
                location_id=location_id,
                actor_label=label,
            )
        )
    if cards:
        GiftCard.objects.bulk_update(list(cards.values()), ["balance", "updated_at"])
        GiftCardEntry.objects.bulk_create(entries)
    Payment.objects.bulk_update(payments, ["refunded_amount"])
    created = Refund.objects.bulk_create(refunds)
    refunded = sum((r.amount for r in created), ZERO)
    order.refunded_total += refunded
    Order.objects.filter(pk=order.pk).update(refunded_total=F("refunded_total") + refunded)
    for refund in created:
        if refund.payment.tender == Tender.CARD:
            _queue("refund_card", refund_id=refund.pk)
    return created


def _record_refund(order: Order, lines: list[tuple[OrderLine, int, Decimal]], *, actor: Any, key: str) -> None:
    """Tell customers about money given back (their spend) and take back points earned on it."""
    if order.customer_id is None or not lines:
        return
    from customers.services import customer_record_refund, loyalty_reverse_earn

    amount = sum((money for _, _, money in lines), ZERO)
    if amount <= 0:
        return
    variants = Variant.objects.select_related("product").in_bulk([line.variant_id for line, _, _ in lines])
    customer_record_refund(
        customer_id=order.customer_id,
        order_ref=order.number,
        channel="online" if order.channel == Channel.ONLINE else "store",
        location_id=order.location_id,
        amount=amount,
        lines=[
            (
                line.variant_id,
                variants[line.variant_id].product.brand,
                variants[line.variant_id].product.category,
                units,
                money,
            )
            for line, units, money in lines
        ],
        occurred_at=timezone.now(),
        idempotency_key=f"{key}:refund",
        actor=actor,
    )
    loyalty_reverse_earn(
        customer_id=order.customer_id,
        order_ref=order.number,
        amount=amount,
        idempotency_key=f"{key}:unearn",
        actor=actor,
    )


# --- Cancellation ---------------------------------------------------------------------------------------------


def order_cancel(
    *,
    actor: Any,
    order_id: int,
    lines: dict[int, int] | None = None,
    reason: str = "",
    location_id: int | None = None,
) -> Order:
    """Cancel the whole order (`lines=None`) or `{line_id: units}` of it, before the goods left us.

    Committed units go back to available where they are; the money for the cancelled units goes
    back to the original tenders. Take-now lines cannot be cancelled (they are returns), nor lines
    whose fulfilment shipped or was collected, nor units on a transfer that is under way. Units of
    a collection whose transfer has not left the other store come off that transfer.
    Raises CancelNotAllowedError, OrderNotFoundError.
    """
    _actor(actor)
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order is None:
            raise OrderNotFoundError(order_id)
        fulfilments = {f.pk: f for f in fulfilments_lock(order_id=order.pk)}
        order_lines = order_lines_lock(order_id=order.pk)
        if lines is None:
            wanted = {
                line.pk: line.open_quantity
                for line in order_lines
                if line.open_quantity
                and fulfilments[line.fulfilment_id].status in CANCELLABLE
                and line.kind != FulfilmentKind.TAKE_NOW
            }
            if not wanted:
                raise CancelNotAllowedError("Nothing on this order can be cancelled any more.")
        else:
            wanted = dict(lines)
        by_id = {line.pk: line for line in order_lines}
        changes: dict[tuple[int, int], int] = defaultdict(int)
        refunded_lines: list[tuple[OrderLine, int, Decimal]] = []
        touched: set[int] = set()
        # Collect fulfilments whose transfer has not left yet: {fulfilment id: {variant id: units}}.
        off_transfer: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for line_id, units in wanted.items():
            line = by_id.get(line_id)
            if line is None:
                raise CancelNotAllowedError("That line is not on this order.", {"line": line_id})
            fulfilment = fulfilments[line.fulfilment_id]
            if line.kind == FulfilmentKind.TAKE_NOW:
                raise CancelNotAllowedError(f"{line.sku} was taken home: make a return instead.", {"line": line_id})
            if fulfilment.status not in CANCELLABLE:
                raise CancelNotAllowedError(
                    f"{line.sku} is already {fulfilment.get_status_display().lower()}.", {"line": line_id}
                )
            if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= line.open_quantity:
                raise CancelNotAllowedError(f"{line.sku}: cancel 1 to {line.open_quantity} unit(s).", {"line": line_id})
            state = _transfer_state(fulfilment)
            if state == "in_transit":
                raise CancelNotAllowedError(
                    f"{line.sku} is on transfer {fulfilment.transfer_ref} to the pickup store: "
                    "cancel once it has arrived.",
                    {"line": line_id, "transfer": fulfilment.transfer_ref},
                )
            if state == "open":
                off_transfer[fulfilment.pk][line.variant_id] += units
            money = pricing.refund_for(
                line_total=line.total,
                line_quantity=line.quantity,
                already_refunded_units=line.cancelled_quantity + line.returned_quantity,
                units=units,
            )
            line.cancelled_quantity += units
            line.picked_quantity = min(line.picked_quantity, line.open_quantity)
            changes[(fulfilment.stock_location_id, line.variant_id)] += units
            refunded_lines.append((line, units, money))
            touched.add(fulfilment.pk)
        OrderLine.objects.bulk_update(
            [line for line, _, _ in refunded_lines], ["cancelled_quantity", "picked_quantity"]
        )
        for fulfilment_id, units_off in sorted(off_transfer.items()):
            _take_off_transfer(order, fulfilments[fulfilment_id], units_off, actor=actor, reason=reason)
        key = f"order:{order.pk}:cancel:{uuid.uuid4().hex[:12]}"
        stock.stock_apply(
            actor=actor,
            changes=[
                LevelChange(location, variant, {"committed": -units}, Guard.NONE)
                for (location, variant), units in sorted(changes.items())
            ],
            reason=MovementReason.CANCEL,
            reference=_order_reference(order.pk),
            note=reason[:255],
            idempotency_key=key,
        )
        amount = sum((money for _, _, money in refunded_lines), ZERO)
        summary = ", ".join(f"{units} x {line.sku}" for line, units, _ in refunded_lines)
        OrderEvent.objects.bulk_create(
            [
                _event(
                    order.pk,
                    "cancelled" if lines is None else "line_cancelled",
                    f"Cancelled {summary}" + (f": {reason}" if reason else "") + f". Refund {amount}.",
                    actor=actor,
                    location_id=location_id,
                    data={"reason": reason[:200], "refund": str(amount)},
                )
            ]
        )
        _refund(order, amount, reason="cancel", actor=actor, location_id=location_id, key=key)
        _record_refund(order, refunded_lines, actor=actor, key=key)
        for fulfilment_id in sorted(touched):
            fulfilment = fulfilments[fulfilment_id]
            if all(line.open_quantity == 0 for line in order_lines if line.fulfilment_id == fulfilment_id):
                _transition(
                    fulfilment,
                    Status.CANCELLED,
                    actor=actor,
                    message=f"{_part_label(fulfilment)}: cancelled.",
                    location_id=location_id,
                )
        order.refresh_from_db()
        return order


def _take_off_transfer(order: Order, fulfilment: Fulfilment, units: dict[int, int], *, actor: Any, reason: str) -> None:
    """Units of a collection ({variant_id: units}) are being cancelled while its transfer has not
    left the other store: take them off that transfer (the caller uncommits them at the origin).

    If the transfer was dispatched meanwhile nothing comes off and the cancel is refused.
    """
    from transfers.services import transfer_release_order_lines

    removed = transfer_release_order_lines(
        actor=actor,
        reference=_order_reference(order.pk),
        note=reason[:200],
        origin_id=fulfilment.source_location_id,
        destination_id=fulfilment.pickup_location_id,
        units=units,
    )
    if removed != sum(units.values()):
        raise CancelNotAllowedError(
            f"Transfer {fulfilment.transfer_ref} has just left for the pickup store: cancel once it has arrived.",
            {"transfer": fulfilment.transfer_ref},
        )


# --- Returns and exchanges ----------------------------------------------------------------------------------


@dataclass
class ReturnInput:
    line_id: int
    quantity: int
    damaged: bool = False
    replacement_variant_id: int | None = None  # an exchange: same product, another size or colour


def order_return(
    *,
    actor: Any,
    order_id: int,
    location_id: int,
    lines: Sequence[ReturnInput],
    idempotency_key: str,
    note: str = "",
) -> OrderReturn:
    """Take items of an order (any channel) back at a store (any store).

    Each unit goes back on hand at `location_id`, or on hand but unavailable when damaged. Units
    returned for a refund give their money back to the original tenders; units exchanged get a
    replacement line (same product, same price) taken now from this store's shelf, paid for by
    the returned item. Idempotent by key. Raises ReturnNotAllowedError.
    """
    key = (idempotency_key or "").strip()
    if not key or len(key) > 200:
        raise ReturnNotAllowedError("A return needs an idempotency key.")
    existing = OrderReturn.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.order_id != order_id:
            raise IdempotencyConflictError(key)
        return existing
    if not lines:
        raise ReturnNotAllowedError("Choose at least one item to return.")
    user, label = _actor(actor)
    store = Location.objects.filter(pk=location_id, is_active=True).first()
    if store is None:
        raise ReturnNotAllowedError("Returns are taken at an active store.")
    try:
        with transaction.atomic():
            return _return(order_id, store, lines, key=key, note=note, actor=actor, user=user, label=label)
    except IntegrityError:
        existing = OrderReturn.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        return existing


def _return(
    order_id: int,
    store: Location,
    inputs: Sequence[ReturnInput],
    *,
    key: str,
    note: str,
    actor: Any,
    user: Any,
    label: str,
) -> OrderReturn:
    order = order_lock(order_id=order_id)
    if order is None:
        raise OrderNotFoundError(order_id)
    order_return_row = OrderReturn.objects.create(
        order=order, location=store, note=note[:255], idempotency_key=key, actor=user, actor_label=label
    )
    fulfilments = {f.pk: f for f in fulfilments_lock(order_id=order.pk)}
    by_id = {line.pk: line for line in order_lines_lock(order_id=order.pk)}
    restock: dict[int, int] = defaultdict(int)
    damaged: dict[int, int] = defaultdict(int)
    refunded_lines: list[tuple[OrderLine, int, Decimal]] = []
    exchanges: list[tuple[OrderLine, int, Variant, Decimal, ReturnLine]] = []
    return_lines: list[ReturnLine] = []
    replacement_ids = {i.replacement_variant_id for i in inputs if i.replacement_variant_id}
    replacements = Variant.objects.select_related("product").in_bulk(replacement_ids) if replacement_ids else {}
    product_of = dict(
        Variant.objects.filter(pk__in=[line.variant_id for line in by_id.values()]).values_list("pk", "product_id")
    )
    for item in inputs:
        line = by_id.get(item.line_id)
        if line is None:
            raise ReturnNotAllowedError("That item is not on this order.", {"line": item.line_id})
        fulfilment = fulfilments[line.fulfilment_id]
        if fulfilment.status not in RETURNABLE:
            raise ReturnNotAllowedError(
                f"{line.sku} is {fulfilment.get_status_display().lower()}: "
                "only items the customer has can be returned.",
                {"line": line.pk},
            )
        returnable = line.open_quantity
        if isinstance(item.quantity, bool) or not isinstance(item.quantity, int) or not 0 < item.quantity <= returnable:
            raise ReturnNotAllowedError(f"{line.sku}: return 1 to {returnable} unit(s).", {"line": line.pk})
        money = pricing.refund_for(
            line_total=line.total,
            line_quantity=line.quantity,
            already_refunded_units=line.cancelled_quantity + line.returned_quantity,
            units=item.quantity,
        )
        line.returned_quantity += item.quantity
        (damaged if item.damaged else restock)[line.variant_id] += item.quantity
        return_line = ReturnLine(
            order_return=order_return_row, order_line=line, quantity=item.quantity, damaged=item.damaged
        )
        if item.replacement_variant_id:
            replacement = replacements.get(item.replacement_variant_id)
            if (
                replacement is None
                or replacement.product_id != product_of[line.variant_id]
                or not replacement.is_active
            ):
                raise ReturnNotAllowedError(
                    f"{line.sku} can be exchanged for another size or colour of the same product.", {"line": line.pk}
                )
            exchanges.append((line, item.quantity, replacement, money, return_line))
        else:
            return_line.refund_amount = money
            refunded_lines.append((line, item.quantity, money))
        return_lines.append(return_line)
    OrderLine.objects.bulk_update(list({i.line_id: by_id[i.line_id] for i in inputs}.values()), ["returned_quantity"])
    reference = _order_reference(order.pk)
    for states, units_by_variant, code in (
        ({"on_hand": 1}, restock, "restock"),
        ({"on_hand": 1, "unavailable": 1}, damaged, "damaged"),
    ):
        if units_by_variant:
            stock.stock_apply(
                actor=actor,
                changes=[
                    LevelChange(store.pk, variant, {state: units * sign for state, sign in states.items()})
                    for variant, units in sorted(units_by_variant.items())
                ],
                reason=MovementReason.RETURN,
                reason_code=code,
                reference=reference,
                note=f"Return {key}"[:255],
                idempotency_key=f"order:{order.pk}:return:{key}:{code}",
            )
    events: list[OrderEvent] = []
    now = timezone.now()
    if exchanges:
        _exchange(order, store, exchanges, actor=actor, key=key, events=events, now=now)
    ReturnLine.objects.bulk_create(return_lines)
    refund_total = sum((money for _, _, money in refunded_lines), ZERO)
    summary = ", ".join(f"{i.quantity} x {by_id[i.line_id].sku}{' (damaged)' if i.damaged else ''}" for i in inputs)
    events.insert(
        0,
        _event(
            order.pk,
            "returned",
            f"Returned at {store.name}: {summary}. Refund {refund_total}.",
            actor=actor,
            location_id=store.pk,
            data={"return": order_return_row.pk, "refund": str(refund_total)},
            at=now,
        ),
    )
    OrderEvent.objects.bulk_create(events)
    refunds = _refund(
        order,
        refund_total,
        reason="return",
        actor=actor,
        location_id=store.pk,
        key=f"return:{key}",
        order_return=order_return_row,
    )
    order_return_row.refund_total = sum((r.amount for r in refunds), ZERO)
    order_return_row.save(update_fields=["refund_total"])
    _record_refund(order, refunded_lines, actor=actor, key=f"order:{order.pk}:return:{key}")
    for fulfilment in fulfilments.values():
        lines_of = [line for line in by_id.values() if line.fulfilment_id == fulfilment.pk]
        if (
            fulfilment.status in RETURNABLE
            and any(line.returned_quantity for line in lines_of)
            and all(line.open_quantity == 0 for line in lines_of)
        ):
            _transition(
                fulfilment,
                Status.RETURNED,
                actor=actor,
                message=f"{_part_label(fulfilment)}: everything returned.",
                location_id=store.pk,
            )
    live_publish(topic="orders", payload={"order": order.pk, "action": "returned", "location": store.pk})
    return order_return_row


def _exchange(
    order: Order,
    store: Location,
    exchanges: list[tuple[OrderLine, int, Variant, Decimal, ReturnLine]],
    *,
    actor: Any,
    key: str,
    events: list[OrderEvent],
    now: Any,
) -> None:
    """Replacement lines, taken now at the returning store and paid for by the returned items.

    The returned units' money is refunded against an "exchange" payment that pays for the new
    lines, so totals stay true: sales = total - refunded, exactly what the customer paid.
    """
    fulfilment = Fulfilment.objects.create(
        order=order,
        kind=FulfilmentKind.TAKE_NOW,
        status=Status.COLLECTED,
        source_location=store,
        stock_location=store,
        completed_at=now,
    )
    position = OrderLine.objects.filter(order=order).count()
    value = ZERO
    new_lines = []
    for offset, (line, units, replacement, money, return_line) in enumerate(exchanges):
        tax = pricing.tax_included(money, store.tax_rate)
        new_line = OrderLine(
            order=order,
            fulfilment=fulfilment,
            variant=replacement,
            sku=replacement.sku,
            name=f"{replacement.product.name} {replacement.colour}/{replacement.size}"[:255],
            kind=FulfilmentKind.TAKE_NOW,
            source_location=store,
            quantity=units,
            unit_price=line.unit_price,
            line_discount=cents(line.unit_price * units) - money,
            total=money,
            tax_rate=store.tax_rate,
            tax_amount=tax,
            picked_quantity=units,
            exchange_for=line,
            position=position + offset,
        )
        new_lines.append(new_line)
        return_line.replacement = new_line
        value += money
    OrderLine.objects.bulk_create(new_lines)
    stock.stock_order_place(
        actor=actor,
        lines=[OrderStockLine(store.pk, new.variant_id, new.quantity, "sell") for new in new_lines],
        reference=_order_reference(order.pk),
        idempotency_key=f"order:{order.pk}:exchange:{key}",
    )
    gross = sum((cents(n.unit_price * n.quantity) for n in new_lines), ZERO)
    Order.objects.filter(pk=order.pk).update(
        subtotal=F("subtotal") + gross,
        discount_total=F("discount_total") + (gross - value),
        total=F("total") + value,
        tax_total=F("tax_total") + sum((n.tax_amount for n in new_lines), ZERO),
        paid_total=F("paid_total") + value,
    )
    if value > 0:
        payment = Payment.objects.create(
            order=order, tender=Tender.EXCHANGE, amount=value, refunded_amount=value, position=99
        )
        _, label = _actor(actor)
        Refund.objects.create(
            payment=payment, order=order, amount=value, reason="exchange", location=store, actor_label=label
        )
        Order.objects.filter(pk=order.pk).update(refunded_total=F("refunded_total") + value)
    events.append(
        _event(
            order.pk,
            "exchanged",
            "Exchanged for " + ", ".join(f"{n.quantity} x {n.sku}" for n in new_lines) + f" at {store.name}.",
            actor=actor,
            fulfilment_id=fulfilment.pk,
            location_id=store.pk,
            at=now,
        )
    )


# --- Gift cards and store credit ------------------------------------------------------------------------------


def gift_card_issue(
    *,
    actor: Any,
    amount: Decimal,
    kind: str = GiftCardKind.GIFT_CARD,
    customer_id: int | None = None,
    code: str = "",
    idempotency_key: str,
) -> GiftCard:
    """Issue a gift card or store credit with an opening balance (sold or given as a refund)."""
    _, label = _actor(actor)
    if amount <= 0 or amount != cents(amount):
        raise InvalidTenderError("A card is issued for an amount above zero, in cents.")
    previous = GiftCardEntry.objects.select_related("card").filter(idempotency_key=idempotency_key).first()
    if previous is not None:
        return previous.card
    code = (code or secrets.token_hex(8)).strip().upper()
    with transaction.atomic():
        card = GiftCard.objects.create(code=code, kind=kind, balance=amount, customer_id=customer_id)
        GiftCardEntry.objects.create(
            card=card,
            amount=amount,
            balance_after=amount,
            reason="issue",
            actor_label=label,
            idempotency_key=idempotency_key,
        )
        return card


def gift_card_balance(*, code: str) -> GiftCard:
    card = GiftCard.objects.filter(code=(code or "").strip().upper(), is_active=True).first()
    if card is None:
        raise GiftCardError("That gift card or credit code is not valid.")
    return card


# --- Privacy (registered with customers.privacy) -------------------------------------------------------------


def orders_erase_customer_data(*, customer_ids: list[int], actor: Any) -> None:
    """Scrub the personal data orders copied (contact and delivery details). Amounts stay."""
    Order.objects.filter(customer_id__in=customer_ids).update(
        contact_name="",
        contact_email="",
        contact_phone="",
        ship_name="",
        ship_line1="",
        ship_line2="",
        ship_city="",
        ship_region="",
        ship_postcode="",
    )


# --- The cart on the tablet ------------------------------------------------------------------------------------


def _new_checkout_key() -> str:
    return f"checkout:{uuid.uuid4().hex}"


def cart_get_or_create(*, user: Any, location_id: int) -> Cart:
    cart, _ = Cart.objects.get_or_create(
        user=user, location_id=location_id, defaults={"checkout_key": _new_checkout_key()}
    )
    return cart


def _locked_cart(cart_id: int) -> Cart:
    cart = cart_lock(cart_id=cart_id)
    if cart is None:
        raise CartError("That cart is gone: reload the page.")
    return cart


def _cart_line(cart: Cart, line_id: int) -> CartLine:
    line = CartLine.objects.select_related("variant").filter(cart=cart, pk=line_id).first()
    if line is None:
        raise CartError("That line is no longer in the cart.")
    return line


def _release_holds(line: CartLine, *, actor: Any) -> None:
    """Give a line's held stock back and forget the holds. Caller holds the cart's lock."""
    holds = list(CartHold.objects.filter(line=line).select_related("reservation"))
    for hold in holds:
        if hold.reservation.status == ReservationStatus.ACTIVE:
            stock.stock_release(actor=actor, reservation_id=hold.reservation_id)
    CartHold.objects.filter(pk__in=[h.pk for h in holds]).delete()


def _hold(cart: Cart, line: CartLine, *, actor: Any) -> list[CartHold]:
    """Reserve a ship or collect line's units at the source(s) the sourcing rules choose.

    Holds expire after OMNI_RESERVATION_MINUTES. A racing sale that takes the planned stock makes
    us plan again (twice); then the error says where else the variant is available.
    Caller holds the cart's lock.
    """
    if line.kind == FulfilmentKind.TAKE_NOW:
        return []
    pickup_id = line.pickup_location_id or cart.location_id
    used = set(
        CartHold.objects.filter(line__cart=cart, line__kind=FulfilmentKind.SHIP)
        .exclude(line=line)
        .values_list("location_id", flat=True)
    )
    today = _local_today(cart.location)
    for attempt in range(PLACE_ATTEMPTS):
        candidates = sourcing_candidates(variant_ids=[line.variant_id], origin=cart.location).get(line.variant_id, [])
        if line.kind == FulfilmentKind.SHIP:
            plan = sourcing.source_ship(candidates, line.quantity, already_used=used)
        else:
            plan = sourcing.source_collect(candidates, line.quantity, pickup_location_id=pickup_id)
        if not plan.complete:
            found = sum(a.quantity for a in plan.allocations)
            verb = "shipped" if line.kind == FulfilmentKind.SHIP else "collected"
            raise OutOfStockError(
                f"Only {found} of {line.variant.sku} can be {verb} (wanted {line.quantity}). "
                + sourcing.where_else(candidates),
                {
                    "sku": line.variant.sku,
                    "requested": line.quantity,
                    "available": found,
                    "lost": {
                        "variant_id": line.variant_id,
                        "quantity": plan.shortfall,
                        "location_id": cart.location_id,
                        "kind": line.kind,
                    },
                },
            )
        try:
            with transaction.atomic():
                holds = []
                for allocation in plan.allocations:
                    reservation = stock.stock_reserve(
                        actor=actor,
                        location_id=allocation.location_id,
                        variant_id=line.variant_id,
                        quantity=allocation.quantity,
                        reference=Reference("cart", str(cart.pk)),
                        idempotency_key=f"cart:{cart.pk}:line:{line.pk}:{uuid.uuid4().hex[:12]}",
                    )
                    holds.append(
                        CartHold(
                            line=line,
                            location_id=allocation.location_id,
                            quantity=allocation.quantity,
                            reservation=reservation,
                            eta=today + timedelta(days=allocation.eta_days),
                        )
                    )
                return CartHold.objects.bulk_create(holds)
        except InsufficientStockError as error:
            if attempt == PLACE_ATTEMPTS - 1:
                raise _out_of_stock(
                    error, OrderDraft(idempotency_key="-", lines=[], tenders=[], location_id=cart.location_id)
                ) from error
    raise AssertionError("unreachable")  # pragma: no cover


def cart_add(
    *,
    actor: Any,
    cart_id: int,
    variant_id: int,
    quantity: int = 1,
    kind: str = FulfilmentKind.TAKE_NOW,
    pickup_location_id: int | None = None,
) -> CartLine:
    """Add an item (a scan adds one more of a take-now item already in the cart)."""
    if kind not in FulfilmentKind.values:
        raise CartError("Choose take now, ship or collect.")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
        raise CartError(f"Quantity must be 1 to {MAX_QUANTITY}.")
    try:
        return _cart_add(
            actor=actor,
            cart_id=cart_id,
            variant_id=variant_id,
            quantity=quantity,
            kind=kind,
            pickup_location_id=pickup_location_id,
        )
    except OutOfStockError as error:
        _record_lost_demand(error)
        raise


def _cart_add(
    *, actor: Any, cart_id: int, variant_id: int, quantity: int, kind: str, pickup_location_id: int | None
) -> CartLine:
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        variant = Variant.objects.filter(pk=variant_id, is_active=True).first()
        if variant is None:
            raise CartError("That product is not for sale.")
        if kind == FulfilmentKind.TAKE_NOW:
            same = CartLine.objects.filter(cart=cart, variant=variant, kind=kind, discount_kind="").first()
            if same is not None:
                same.quantity += quantity
                same.save(update_fields=["quantity"])
                return same
        if CartLine.objects.filter(cart=cart).count() >= MAX_LINES:
            raise CartError(f"A cart has at most {MAX_LINES} lines.")
        line = CartLine.objects.create(
            cart=cart,
            variant=variant,
            quantity=quantity,
            kind=kind,
            pickup_location_id=(pickup_location_id or cart.location_id) if kind == FulfilmentKind.COLLECT else None,
            unit_price=variant.price,
        )
        _hold(cart, line, actor=actor)
        Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())
        return line


def cart_line_update(
    *,
    actor: Any,
    cart_id: int,
    line_id: int,
    quantity: int | None = None,
    kind: str | None = None,
    pickup_location_id: int | None = None,
) -> CartLine:
    """Change a line's quantity, fulfilment or pickup store; its stock is held again accordingly.
    If the new holds cannot be made, nothing changes (the old holds stay)."""
    if kind is not None and kind not in FulfilmentKind.values:
        raise CartError("Choose take now, ship or collect.")
    if quantity is not None and (
        isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY
    ):
        raise CartError(f"Quantity must be 1 to {MAX_QUANTITY}.")
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        line = _cart_line(cart, line_id)
        if quantity is not None:
            line.quantity = quantity
        if kind is not None:
            line.kind = kind
        if line.kind == FulfilmentKind.COLLECT:
            line.pickup_location_id = pickup_location_id or line.pickup_location_id or cart.location_id
        else:
            line.pickup_location_id = None
        line.save(update_fields=["quantity", "kind", "pickup_location"])
        _release_holds(line, actor=actor)
        _hold(cart, line, actor=actor)
        return line


def cart_line_rehold(*, actor: Any, cart_id: int, line_id: int) -> CartLine:
    """Hold a line's stock again after its holds expired (or were released)."""
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        line = _cart_line(cart, line_id)
        _release_holds(line, actor=actor)
        _hold(cart, line, actor=actor)
        return line


def cart_line_remove(*, actor: Any, cart_id: int, line_id: int) -> None:
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        line = _cart_line(cart, line_id)
        _release_holds(line, actor=actor)
        line.delete()


def cart_clear(*, actor: Any, cart_id: int) -> Cart:
    """Leave the sale: every hold is released, the cart is emptied, a new checkout key is drawn."""
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        for line in CartLine.objects.filter(cart=cart).select_related("variant"):
            _release_holds(line, actor=actor)
        CartLine.objects.filter(cart=cart).delete()
        _reset_cart(cart)
        return cart


def _reset_cart(cart: Cart) -> None:
    cart.customer = None
    cart.checkout_key = _new_checkout_key()
    cart.order_discount_kind = ""
    cart.order_discount_value = ZERO
    cart.order_discount_approved_by = None
    for name in ("ship_name", "ship_line1", "ship_line2", "ship_city", "ship_region", "ship_postcode"):
        setattr(cart, name, "")
    cart.save()


def cart_set_customer(*, actor: Any, cart_id: int, customer_id: int | None) -> Cart:
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        if customer_id is not None:
            from customers.models import Customer

            customer = Customer.objects.filter(pk=customer_id).first()
            if customer is None or not customer.is_active:
                raise CartError("That customer record is not active.")
            cart.customer = customer
            default = customer.addresses.order_by("-is_default", "pk").first()
            if default is not None and not cart.ship_line1:
                cart.ship_name = customer.name
                cart.ship_line1, cart.ship_line2 = default.line1, default.line2
                cart.ship_city, cart.ship_region = default.city, default.region
                cart.ship_postcode, cart.ship_country = default.postcode, default.country
        else:
            cart.customer = None
        cart.save()
        return cart


def cart_set_address(*, actor: Any, cart_id: int, address: Address) -> Cart:
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        cart.ship_name = address.name.strip()[:200]
        cart.ship_line1 = address.line1.strip()[:200]
        cart.ship_line2 = address.line2.strip()[:200]
        cart.ship_city = address.city.strip()[:100]
        cart.ship_region = address.region.strip()[:100]
        cart.ship_postcode = address.postcode.strip()[:20]
        cart.ship_country = (address.country.strip() or "US")[:2].upper()
        cart.save()
        return cart


def cart_set_line_discount(
    *, actor: Any, cart_id: int, line_id: int, discount: Discount, approver: Any = None
) -> CartLine:
    """Discount one line. Above the threshold a manager must approve (recorded on the line)."""
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        line = _cart_line(cart, line_id)
        gross = cents(line.unit_price * line.quantity)
        percent = pricing.percent_of(discount.amount_of(gross), gross)
        limit = pricing.approval_threshold_percent()
        if percent > limit:
            if approver is None:
                raise ApprovalRequiredError(round(percent, 1), limit)
            _check_approver(approver, cart.location_id)
        line.discount_kind = discount.kind if discount.is_set else ""
        line.discount_value = discount.value if discount.is_set else ZERO
        line.discount_approved_by = approver if percent > limit else None
        line.save(update_fields=["discount_kind", "discount_value", "discount_approved_by"])
        return line


def cart_set_order_discount(*, actor: Any, cart_id: int, discount: Discount, approver: Any = None) -> Cart:
    """Discount the whole sale. Above the threshold a manager must approve."""
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        lines = list(CartLine.objects.filter(cart=cart))
        priced = pricing.price_order(
            [
                pricing.LineInput(
                    line.unit_price, line.quantity, ZERO, Discount(line.discount_kind, line.discount_value)
                )
                for line in lines
            ],
            discount,
        )
        limit = pricing.approval_threshold_percent()
        if priced.order_discount_percent > limit:
            if approver is None:
                raise ApprovalRequiredError(round(priced.order_discount_percent, 1), limit)
            _check_approver(approver, cart.location_id)
        cart.order_discount_kind = discount.kind if discount.is_set else ""
        cart.order_discount_value = discount.value if discount.is_set else ZERO
        cart.order_discount_approved_by = approver if priced.order_discount_percent > limit else None
        cart.save()
        return cart


def cart_checkout(
    *, actor: Any, cart_id: int, checkout_key: str, tenders: list[TenderInput], contact_email: str = ""
) -> PlaceResult:
    """Place the cart's order with the checkout key the tablet sent, then empty the cart.

    A repeat of the same key (double tap, retry, lost response) returns the order already placed.
    """
    key = _idempotency_key(checkout_key)
    existing = Order.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return PlaceResult(existing, created=False)
    with transaction.atomic():
        cart = _locked_cart(cart_id)
        existing = Order.objects.filter(idempotency_key=key).first()
        if existing is not None:  # a double tap that waited for our lock
            return PlaceResult(existing, created=False)
        if key != cart.checkout_key:
            raise CartError("This sale changed on another screen: reload the page and check it.")
        lines = list(
            CartLine.objects.filter(cart=cart)
            .select_related("discount_approved_by")
            .prefetch_related("holds__reservation")
            .order_by("pk")
        )
        if not lines:
            raise CartError("The cart is empty.")
        draft_lines: list[DraftLine] = []
        for line in lines:
            discount = Discount(line.discount_kind, line.discount_value) if line.discount_kind else NO_DISCOUNT
            if line.kind == FulfilmentKind.TAKE_NOW:
                draft_lines.append(
                    DraftLine(
                        line.variant_id,
                        line.quantity,
                        discount=discount,
                        discount_approved_by=line.discount_approved_by,
                    )
                )
                continue
            holds = list(line.holds.all())
            if sum(h.quantity for h in holds) != line.quantity or any(
                h.reservation.status != ReservationStatus.ACTIVE for h in holds
            ):
                raise CartError("A hold in the cart expired: hold it again before paying.", {"line": line.pk})
            shares = (
                pricing.split_amount(discount.value, [h.quantity for h in holds]) if discount.kind == "amount" else None
            )
            for index, hold in enumerate(holds):
                draft_lines.append(
                    DraftLine(
                        line.variant_id,
                        hold.quantity,
                        kind=line.kind,
                        source_location_id=hold.location_id,
                        pickup_location_id=line.pickup_location_id,
                        reservation_id=hold.reservation_id,
                        discount=Discount("amount", shares[index]) if shares else discount,
                        discount_approved_by=line.discount_approved_by,
                        eta=hold.eta,
                    )
                )
        customer = cart.customer
        draft = OrderDraft(
            idempotency_key=key,
            lines=draft_lines,
            tenders=tenders,
            location_id=cart.location_id,
            channel=Channel.STORE,
            customer_id=customer.pk if customer else None,
            contact_name=customer.name if customer else "",
            contact_email=(contact_email or (customer.email if customer else "")).strip(),
            contact_phone=customer.phone if customer else "",
            address=Address(
                cart.ship_name,
                cart.ship_line1,
                cart.ship_line2,
                cart.ship_city,
                cart.ship_region,
                cart.ship_postcode,
                cart.ship_country,
            ),
            order_discount=Discount(cart.order_discount_kind, cart.order_discount_value)
            if cart.order_discount_kind
            else NO_DISCOUNT,
            order_discount_approved_by=cart.order_discount_approved_by,
        )
        result = order_place(actor=actor, draft=draft)
        if result.created:
            CartHold.objects.filter(line__cart=cart).delete()
            CartLine.objects.filter(cart=cart).delete()
            _reset_cart(cart)
        return result


def reservation_is_live(reservation: Reservation) -> bool:
    return reservation.status == ReservationStatus.ACTIVE and (
        reservation.expires_at is None or reservation.expires_at > timezone.now()
    )


def refund_card_process(*, refund_id: int) -> bool:
    """Ask the terminal adapter to refund a card (after commit). Idempotent: a refund whose
    terminal reference is no longer pending is left alone."""
    from .terminal import terminal

    refund = Refund.objects.select_related("payment").filter(pk=refund_id).first()
    if refund is None or not refund.terminal_ref.startswith("pending:"):
        return False
    result = terminal().refund(
        amount=refund.amount, original_ref=refund.payment.terminal_ref, reference=f"refund:{refund.pk}"
    )
    Refund.objects.filter(pk=refund.pk, terminal_ref=refund.terminal_ref).update(terminal_ref=result.terminal_ref[:64])
    return True
