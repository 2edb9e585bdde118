"""Every non-trivial read of orders: sourcing candidates, carts, order lists and details, queues.

Each selector costs a fixed number of queries whatever the number of rows (tests pin them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet, Sum

from inventory.models import Location, StockLevel

from .errors import FulfilmentNotFoundError, OrderNotFoundError
from .models import (
    Cart,
    CartHold,
    CartLine,
    Fulfilment,
    FulfilmentKind,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Status,
    parse_order_number,
)
from .sourcing import Candidate, distance_km

# --- Sourcing ----------------------------------------------------------------------------------------


def _point(latitude: Any, longitude: Any) -> tuple[float, float] | None:
    return (float(latitude), float(longitude)) if latitude is not None and longitude is not None else None


def sourcing_candidates(*, variant_ids: Iterable[int], origin: Location | None) -> dict[int, list[Candidate]]:
    """Per variant, every active location with units available (safety stock excluded), with its
    distance from `origin` (the selling store). One query."""
    rows = (
        StockLevel.objects.filter(variant_id__in=list(variant_ids), available__gt=0, location__is_active=True)
        .order_by("variant_id", "location_id")
        .values_list(
            "variant_id",
            "location_id",
            "available",
            "location__code",
            "location__name",
            "location__kind",
            "location__ships_to_customers",
            "location__sends_transfers",
            "location__offers_pickup",
            "location__latitude",
            "location__longitude",
        )
    )
    here = _point(origin.latitude, origin.longitude) if origin is not None else None
    result: dict[int, list[Candidate]] = {}
    for variant_id, location_id, available, code, name, kind, ships, sends, pickup, lat, lon in rows:
        distance = 0.0 if origin is not None and location_id == origin.pk else distance_km(here, _point(lat, lon))
        result.setdefault(variant_id, []).append(
            Candidate(
                location_id=location_id,
                code=code,
                name=name,
                kind=kind,
                available=available,
                ships_to_customers=ships,
                sends_transfers=sends,
                offers_pickup=pickup,
                distance_km=distance,
            )
        )
    return result


@dataclass(frozen=True)
class StockHint:
    """What a seller sees beside a product before choosing take now, ship or collect."""

    here: int  # available at the selling store
    elsewhere: int  # available at the other active locations that ship or send transfers


def stock_hints(*, variant_ids: Iterable[int], location_id: int) -> dict[int, StockHint]:
    """Per variant, units available here and elsewhere in the network. One query."""
    elsewhere = ~Q(location_id=location_id) & (Q(location__ships_to_customers=True) | Q(location__sends_transfers=True))
    rows = (
        StockLevel.objects.filter(variant_id__in=list(variant_ids), available__gt=0, location__is_active=True)
        .values("variant_id")
        .annotate(
            here=Sum("available", filter=Q(location_id=location_id), default=0),
            elsewhere=Sum("available", filter=elsewhere, default=0),
        )
    )
    return {row["variant_id"]: StockHint(row["here"], row["elsewhere"]) for row in rows}


def pickup_locations() -> list[Location]:
    return list(Location.objects.active().filter(offers_pickup=True).order_by("name"))


# --- Carts ---------------------------------------------------------------------------------------------


def cart_get(*, user: Any, location_id: int) -> Cart | None:
    """The user's cart at the location with lines, variants, holds and reservations. Four queries."""
    holds = CartHold.objects.select_related("reservation", "location").order_by("pk")
    lines = (
        CartLine.objects.select_related("variant__product", "pickup_location", "discount_approved_by")
        .prefetch_related(Prefetch("holds", queryset=holds))
        .order_by("pk")
    )
    return (
        Cart.objects.select_related("customer", "location", "order_discount_approved_by")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .filter(user=user, location_id=location_id)
        .first()
    )


# --- Orders --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilter:
    location_ids: frozenset[int] | None = None  # None: every location (admins)
    status: str = ""
    channel: str = ""
    query: str = ""  # an order number, or part of the customer's name / email
    customer_ids: tuple[int, ...] = ()


def order_list(*, filters: OrderFilter, limit: int = 50, offset: int = 0) -> list[Order]:
    """Newest first, with the selling location and customer, `limit` from `offset`. One query."""
    orders: QuerySet[Order] = Order.objects.select_related("location", "customer")
    if filters.location_ids is not None:
        visible = Order.objects.for_locations(filters.location_ids).values("pk")
        orders = orders.filter(pk__in=visible)
    if filters.status:
        orders = orders.filter(status=filters.status)
    if filters.channel:
        orders = orders.filter(channel=filters.channel)
    if filters.customer_ids:
        orders = orders.filter(customer_id__in=filters.customer_ids)
    if filters.query:
        number = parse_order_number(filters.query)
        text = filters.query.strip()
        condition = Q(contact_email__iexact=text) | Q(contact_name__icontains=text) | Q(external_ref=text)
        if number is not None:
            condition |= Q(pk=number)
        orders = orders.filter(condition)
    return list(orders.order_by("-placed_at", "-id")[offset : offset + limit])


def _order_detail_queryset() -> QuerySet[Order]:
    lines = OrderLine.objects.select_related("variant__product", "source_location").order_by("position", "pk")
    events = OrderEvent.objects.select_related("location").order_by("created_at", "pk")
    fulfilments = Fulfilment.objects.select_related("source_location", "pickup_location", "stock_location").order_by(
        "pk"
    )
    payments = Payment.objects.select_related("gift_card").prefetch_related("refunds").order_by("position", "pk")
    return Order.objects.select_related("location", "customer", "placed_by", "discount_approved_by").prefetch_related(
        Prefetch("lines", queryset=lines),
        Prefetch("events", queryset=events),
        Prefetch("fulfilments", queryset=fulfilments),
        Prefetch("payments", queryset=payments),
    )


def order_get(*, number: str | int) -> Order:
    """An order by number (SO-000123) or id, with everything its page shows. Seven queries."""
    pk = number if isinstance(number, int) else parse_order_number(number)
    order = _order_detail_queryset().filter(pk=pk).first() if pk else None
    if order is None:
        raise OrderNotFoundError(number)
    return order


def order_visible_to(*, order: Order, location_ids: frozenset[int] | None) -> bool:
    """Staff see orders sold at, fulfilled from or collected at a location of theirs.
    Uses the prefetched fulfilments (no query)."""
    if location_ids is None:
        return True
    if order.location_id in location_ids:
        return True
    return any(
        f.source_location_id in location_ids or (f.pickup_location_id or 0) in location_ids
        for f in order.fulfilments.all()
    )


def orders_for_customers(*, customer_ids: list[int], limit: int = 20) -> list[Order]:
    """A customer's orders (and those of records merged into them), newest first, with their
    fulfilments (where to collect, tracking). Two queries."""
    fulfilments = Fulfilment.objects.select_related("pickup_location").order_by("pk")
    return list(
        Order.objects.select_related("location")
        .prefetch_related(Prefetch("fulfilments", queryset=fulfilments))
        .filter(customer_id__in=customer_ids)
        .order_by("-placed_at", "-id")[:limit]
    )


# --- Fulfilment ----------------------------------------------------------------------------------------

OPEN_SHIP = (Status.ALLOCATED, Status.PICKING, Status.PACKED)


@dataclass
class Queue:
    to_ship: list[Fulfilment]
    pickups: list[Fulfilment]
    outgoing_transfers: list[Fulfilment]


def fulfilment_queue(*, location_id: int) -> Queue:
    """Work for one location: ship fulfilments to pick, pack and ship; collect orders to get ready
    or hand over here; collect orders whose stock this location sends to another store.
    Two queries (fulfilments with order, then their lines)."""
    lines = OrderLine.objects.order_by("position", "pk")
    fulfilments = list(
        Fulfilment.objects.select_related("order", "order__customer", "pickup_location", "source_location")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .filter(
            Q(kind=FulfilmentKind.SHIP, source_location_id=location_id, status__in=OPEN_SHIP)
            | Q(
                kind=FulfilmentKind.COLLECT,
                pickup_location_id=location_id,
                status__in=(*OPEN_SHIP, Status.READY_FOR_PICKUP),
            )
            | Q(kind=FulfilmentKind.COLLECT, source_location_id=location_id, status__in=OPEN_SHIP)
        )
        .order_by("created_at", "pk")
    )
    return Queue(
        to_ship=[f for f in fulfilments if f.kind == FulfilmentKind.SHIP],
        pickups=[f for f in fulfilments if f.kind == FulfilmentKind.COLLECT and f.pickup_location_id == location_id],
        outgoing_transfers=[
            f for f in fulfilments if f.kind == FulfilmentKind.COLLECT and f.pickup_location_id != location_id
        ],
    )


def fulfilment_get(*, fulfilment_id: int) -> Fulfilment:
    """A fulfilment with its order, lines and locations. Two queries."""
    lines = OrderLine.objects.select_related("variant__product").order_by("position", "pk")
    fulfilment = (
        Fulfilment.objects.select_related(
            "order", "order__customer", "order__location", "source_location", "pickup_location", "stock_location"
        )
        .prefetch_related(Prefetch("lines", queryset=lines))
        .filter(pk=fulfilment_id)
        .first()
    )
    if fulfilment is None:
        raise FulfilmentNotFoundError(fulfilment_id)
    return fulfilment


def fulfilment_locations(fulfilment: Fulfilment) -> set[int]:
    """Locations whose staff may act on the fulfilment (the source and the pickup store)."""
    return {fulfilment.source_location_id} | (
        {fulfilment.pickup_location_id} if fulfilment.pickup_location_id else set()
    )


# --- Privacy (registered with customers.privacy) ---------------------------------------------------------


def orders_export_for_customers(*, customer_ids: list[int]) -> list[dict[str, Any]]:
    """The customer's orders for a data export: what they bought, where, what they paid."""
    orders = (
        Order.objects.filter(customer_id__in=customer_ids)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("position", "pk")))
        .order_by("placed_at", "pk")
    )
    return [
        {
            "number": order.number,
            "placed_at": order.placed_at.isoformat(),
            "channel": order.channel,
            "status": order.status,
            "total": str(order.total),
            "contact": {"name": order.contact_name, "email": order.contact_email, "phone": order.contact_phone},
            "ship_to": {
                "name": order.ship_name,
                "line1": order.ship_line1,
                "line2": order.ship_line2,
                "city": order.ship_city,
                "region": order.ship_region,
                "postcode": order.ship_postcode,
                "country": order.ship_country,
            },
            "lines": [
                {"sku": line.sku, "name": line.name, "quantity": line.quantity, "total": str(line.total)}
                for line in order.lines.all()
            ],
        }
        for order in orders
    ]


# --- The sale on the tablet --------------------------------------------------------------------------------


@dataclass
class CartLineView:
    line: CartLine
    holds: list[CartHold]
    expired: bool  # a hold lapsed or is missing: hold again before paying
    expires_at: Any
    eta: Any
    where: str  # "This store's shelf", "Ships from Central Warehouse", ...
    gross: Any
    discount: Any
    total: Any


@dataclass
class CartView:
    cart: Cart
    lines: list[CartLineView]
    subtotal: Any
    discount_total: Any
    order_discount: Any
    total: Any
    tax_total: Any
    has_ship: bool
    has_collect: bool
    needs_customer: bool
    expired: bool
    pickup_locations: list[Location]


def cart_view(*, user: Any, location: Location) -> CartView:
    """The sale with per-line source, ETA, hold expiry and the totals. Five queries, six with
    take-now lines (what the shelf holds on record)."""
    from django.utils import timezone

    from .pricing import Discount, LineInput, price_order

    cart = cart_get(user=user, location_id=location.pk)
    if cart is None:
        from .services import cart_get_or_create

        cart_get_or_create(user=user, location_id=location.pk)
        cart = cart_get(user=user, location_id=location.pk)
    assert cart is not None
    pickups = pickup_locations()
    rates = {loc.pk: loc.tax_rate for loc in pickups}
    rates[location.pk] = location.tax_rate
    now = timezone.now()
    lines = list(cart.lines.all())
    inputs = []
    for line in lines:
        holds = list(line.holds.all())
        if line.kind == FulfilmentKind.TAKE_NOW:
            rate = location.tax_rate
        elif line.kind == FulfilmentKind.COLLECT:
            rate = rates.get(line.pickup_location_id or location.pk, location.tax_rate)
        else:
            rate = holds[0].location.tax_rate if holds else location.tax_rate
        discount = Discount(line.discount_kind, line.discount_value) if line.discount_kind else Discount()
        inputs.append(LineInput(line.unit_price, line.quantity, rate, discount))
    order_discount = (
        Discount(cart.order_discount_kind, cart.order_discount_value) if cart.order_discount_kind else Discount()
    )
    priced = price_order(inputs, order_discount)
    shelf_ids = {line.variant_id for line in lines if line.kind == FulfilmentKind.TAKE_NOW}
    # Units free to sell on record, as the sale will count them (StockLevel.free_to_sell).
    levels = StockLevel.objects.filter(location_id=location.pk, variant_id__in=shelf_ids) if shelf_ids else []
    on_shelf = {level.variant_id: level.free_to_sell for level in levels}
    views = []
    for line, priced_line in zip(lines, priced.lines, strict=True):
        holds = list(line.holds.all())
        live = [
            h
            for h in holds
            if h.reservation.status == "active" and (h.reservation.expires_at is None or h.reservation.expires_at > now)
        ]
        expired = line.kind != FulfilmentKind.TAKE_NOW and (
            len(live) != len(holds) or sum(h.quantity for h in holds) != line.quantity
        )
        views.append(
            CartLineView(
                line=line,
                holds=holds,
                expired=expired,
                expires_at=min((h.reservation.expires_at for h in live if h.reservation.expires_at), default=None),
                eta=max((h.eta for h in holds if h.eta), default=None),
                where=_where(line, holds, location, on_shelf.get(line.variant_id, 0)),
                gross=priced_line.gross,
                discount=priced_line.line_discount,
                total=priced_line.gross - priced_line.line_discount,
            )
        )
    kinds = {line.kind for line in lines}
    return CartView(
        cart=cart,
        lines=views,
        subtotal=priced.subtotal,
        discount_total=priced.discount_total,
        order_discount=priced.order_discount,
        total=priced.total,
        tax_total=priced.tax_total,
        has_ship=FulfilmentKind.SHIP in kinds,
        has_collect=FulfilmentKind.COLLECT in kinds,
        needs_customer=bool(kinds & {FulfilmentKind.SHIP, FulfilmentKind.COLLECT}),
        expired=any(v.expired for v in views),
        pickup_locations=pickups,
    )


def _where(line: CartLine, holds: list[CartHold], here: Location, on_shelf: int) -> str:
    if line.kind == FulfilmentKind.TAKE_NOW:
        if on_shelf < line.quantity:  # the sale still goes through (found stock) and asks for a count
            record = "none" if on_shelf <= 0 else f"only {on_shelf}"
            return f"From this store's shelf ({record} on record here: the sale will ask for a count)"
        return "From this store's shelf"
    names = " and ".join(f"{h.location.name}" + (f" ({h.quantity})" if len(holds) > 1 else "") for h in holds)
    if line.kind == FulfilmentKind.SHIP:
        return f"Ships from {names}" if holds else "Not held"
    pickup = line.pickup_location.name if line.pickup_location else here.name
    if holds and all(h.location_id == line.pickup_location_id for h in holds):
        return f"Collect at {pickup}"
    return f"Collect at {pickup}, sent from {names}" if holds else f"Collect at {pickup}: not held"
