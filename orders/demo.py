"""Demo sales history: `--days` (default 90) days of orders at every store, ending now.

Called by `manage.py seed_demo` (docs/DEMO_DATA.md) after inventory, staff, transfers and
customers. Per store and day: 3-9 orders (flagships and weekends more), mostly take-now sales,
some shipped from the warehouse (endless aisle), some collected in store, a few with a discount,
a few returned later (at the same or another store), and now and then a request no location could
source (lost demand). Customers from the customers app buy about a third of them (all ship and
collect orders); their purchase records go through customers.services.

Every stock change goes through inventory.services: one `stock_order_place` per store-day (sales
and commitments), one `stock_apply` for what was shipped or collected and one for returns, so the
ledger holds real `sale`, `commit`, `fulfil` and `return` movements. The services stamp movements
with the time they run; the demo then dates the movements it just wrote to their sale day (a
queryset update of this run's own rows), so velocity and insights see 90 days of history instead
of one busy day.

Writes are bulk (orders, lines, payments, events per store-day), ten store-days per transaction,
keyed `demo-sale:<store code>:d<days ago>:<n>`: a second run finds the keys and writes nothing,
and an interrupted run picks up at the first missing day. Each store-day draws from its own
random stream, so resuming gives the same data as one run.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from inventory import demo as inventory_demo
from inventory import services as stock
from inventory.models import Location, MovementReason, StockLevel, StockMovement, Variant
from inventory.services import LevelChange, OrderStockLine, Reference, SystemActor

from .models import (
    Channel,
    Fulfilment,
    FulfilmentKind,
    LostDemand,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Refund,
    Status,
    Tender,
    order_number,
)
from .pricing import Discount, LineInput, price_order

DEMO_ACTOR = SystemActor("demo-data")
KEY = "demo-sale"
CARRIERS = ("UPS", "FedEx", "USPS")
DAYS_PER_TRANSACTION = 10
LAPSING_SHARE = 0.4  # of customers stop buying somewhere in the history


class Writer(Protocol):
    def write(self, msg: str, /) -> Any: ...


@dataclass
class _Stock:
    """Units we may still sell, per variant, at one location (a local copy kept as we go)."""

    available: dict[int, int]
    pool: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pool = sorted(v for v, units in self.available.items() if units > 0)

    def take(self, rng: random.Random) -> int | None:
        while self.pool:
            index = rng.randrange(len(self.pool))
            variant_id = self.pool[index]
            if self.available.get(variant_id, 0) > 0:
                self.available[variant_id] -= 1
                if self.available[variant_id] == 0:
                    self.pool[index] = self.pool[-1]
                    self.pool.pop()
                return variant_id
            self.pool[index] = self.pool[-1]
            self.pool.pop()
        return None

    def give_back(self, variant_id: int, units: int) -> None:
        if self.available.get(variant_id, 0) == 0:
            self.pool.append(variant_id)
        self.available[variant_id] = self.available.get(variant_id, 0) + units


CustomerRow = tuple[int, str, str]  # id, name, email


@dataclass
class _Shoppers:
    """Who buys on a given day. Shoppers differ, as the customer-value models assume: each has
    their own rate (a gamma draw, so a few regulars and many occasional buyers), and some stop
    buying at some point in the history. Drawn from each customer's id, so a resumed load agrees.
    With everyone equally likely and nobody lapsing, BG/NBD found no heterogeneity and no dropout
    to fit and the nightly run often ended without forecasts."""

    customers: list[CustomerRow]
    days: int
    by_offset: dict[int, tuple[list[CustomerRow], list[float]]] = field(default_factory=dict)
    _traits: list[tuple[CustomerRow, float, int]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        for customer in self.customers:
            draw = random.Random(f"shopper:{customer[0]}")
            rate = draw.gammavariate(0.6, 1.0)
            lapsed_after = draw.randrange(1, max(2, self.days)) if draw.random() < LAPSING_SHARE else 0
            self._traits.append((customer, rate, lapsed_after))

    def pick(self, rng: random.Random, offset: int) -> CustomerRow | None:
        """A shopper active `offset` days ago, likelier the higher their rate; None if nobody is."""
        if offset not in self.by_offset:
            active = [(customer, rate) for customer, rate, lapsed in self._traits if offset >= lapsed]
            weights = list(accumulate(rate for _, rate in active))
            self.by_offset[offset] = ([customer for customer, _ in active], weights)
        population, weights = self.by_offset[offset]
        return rng.choices(population, cum_weights=weights)[0] if population else None


def _available(location: Location) -> _Stock:
    rows = StockLevel.objects.filter(location=location, available__gt=0).values_list("variant_id", "available")
    return _Stock(dict(rows))


def seed(options: Mapping[str, Any], rng: random.Random, stdout: Writer) -> None:
    verbose = options.get("verbosity", 1) >= 1
    days = int(options.get("days", 90))
    stores = list(
        Location.objects.filter(code__in=inventory_demo.store_codes(int(options.get("stores") or 8))).order_by("code")
    )
    warehouse = Location.objects.filter(code=inventory_demo.WAREHOUSE_CODE).first()
    if days <= 0 or not stores or warehouse is None:
        if verbose:
            stdout.write("  orders: nothing to do (no days or no locations)")
        return
    # The history is written once: a store's late days can have no sale at all (its shelves ran
    # empty), so "no order that day" cannot mean "not seeded yet" without a second run selling
    # again on a changed network. An interrupted load is redone on a fresh database.
    seeded = Order.objects.filter(idempotency_key__startswith=f"{KEY}:").exists()
    todo = [] if seeded else [(store, offset) for store in stores for offset in range(days, 0, -1)]
    if not todo:
        if verbose:
            stdout.write("  orders: already seeded")
        return
    base = rng.random()  # one draw: each store-day seeds its own stream from it
    variants = {v.pk: v for v in Variant.objects.select_related("product").filter(is_active=True).order_by("pk")}
    customers = _Shoppers(_customers(), days)
    now = timezone.now().replace(microsecond=0)
    warehouse_stock = _available(warehouse)
    other_stores = {store.pk: [s for s in stores if s.pk != store.pk] or [store] for store in stores}
    totals: dict[str, int] = defaultdict(int)
    current = None
    store_stock = None
    # Ten store-days per transaction: fewer commits, and an interrupted run loses at most one chunk.
    chunks = [todo[i : i + DAYS_PER_TRANSACTION] for i in range(0, len(todo), DAYS_PER_TRANSACTION)]
    for chunk in chunks:
        with transaction.atomic():
            for store, offset in chunk:
                if store is not current:
                    current, store_stock = store, _available(store)
                assert store_stock is not None
                day_rng = random.Random(f"{base}:{store.code}:{offset}")
                counts = _seed_day(
                    store=store,
                    offset=offset,
                    now=now,
                    rng=day_rng,
                    variants=variants,
                    customers=customers,
                    here=store_stock,
                    warehouse=warehouse,
                    warehouse_stock=warehouse_stock,
                    return_stores=other_stores[store.pk],
                )
                for name, value in counts.items():
                    totals[name] += value
                if verbose and totals["orders"] and totals["orders"] % 5000 < counts.get("orders", 0):
                    stdout.write(f"  orders: {totals['orders']:,} orders so far")
    # The opening stock was on the shelves before the first simulated day, so a variant's ledger
    # reads receipt, then sales (the receipts were stamped when inventory's demo ran, just now).
    stock.ledger_backdate(
        movements=StockMovement.objects.filter(
            operation_key__startswith=f"{inventory_demo.OPENING_KEY_PREFIX}:", reason=MovementReason.RECEIPT
        ),
        created_at=now - timedelta(days=days + 1),
    )
    if verbose:
        stdout.write(
            f"  orders: {totals['orders']:,} orders over {days} days at {len(stores)} stores "
            f"({totals['ship']:,} shipped, {totals['collect']:,} collected, {totals['returns']:,} returns, "
            f"{totals['lost']:,} lost-demand requests)"
        )


def _customers() -> list[CustomerRow]:
    try:
        from customers.models import Customer, CustomerStatus
    except ImportError:  # pragma: no cover - customers is installed
        return []
    return list(
        Customer.objects.filter(status=CustomerStatus.ACTIVE).order_by("pk").values_list("pk", "name", "email")[:5000]
    )


def _seed_day(
    *,
    store: Location,
    offset: int,
    now: datetime,
    rng: random.Random,
    variants: dict[int, Variant],
    customers: _Shoppers,
    here: _Stock,
    warehouse: Location,
    warehouse_stock: _Stock,
    return_stores: list[Location],
) -> dict[str, int]:
    """One store's day: orders, their fulfilment so far, returns; one transaction."""
    day = now - timedelta(days=offset)
    opening = day.replace(hour=15, minute=0, second=0)  # ~10:00 in Texas
    flagship = store.ships_to_customers
    weekend = day.weekday() >= 5
    count = rng.randint(3, 7) + (2 if flagship else 0) + (2 if weekend else 0)
    plans = []
    for n in range(count):
        roll = rng.random()
        kind = (
            FulfilmentKind.SHIP if roll < 0.09 else FulfilmentKind.COLLECT if roll < 0.14 else FulfilmentKind.TAKE_NOW
        )
        source_stock = warehouse_stock if kind == FulfilmentKind.SHIP else here
        wanted = rng.choice((1, 1, 1, 2, 2, 3))
        picked = [v for v in (source_stock.take(rng) for _ in range(wanted)) if v is not None]
        customer = customers.pick(rng, offset) if kind != FulfilmentKind.TAKE_NOW or rng.random() < 0.3 else None
        if not picked or (kind != FulfilmentKind.TAKE_NOW and customer is None):
            for variant_id in picked:
                source_stock.give_back(variant_id, 1)
            continue
        at = opening + timedelta(minutes=rng.randrange(0, 600))
        if at >= now:
            at = now - timedelta(minutes=count - n)
        plans.append((n, kind, picked, customer, at, rng.random() < 0.08, rng.random()))
    lost = [] if rng.random() > 0.25 else [rng.choice(list(variants))]
    if not plans:
        return {}
    return _write_day(store, offset, now, rng, plans, variants, warehouse, here, return_stores, lost)


def _write_day(
    store: Location,
    offset: int,
    now: datetime,
    rng: random.Random,
    plans: list[Any],
    variants: dict[int, Variant],
    warehouse: Location,
    here: _Stock,
    return_stores: list[Location],
    lost: list[int],
) -> dict[str, int]:
    rate = store.tax_rate
    orders: list[Order] = []
    priced_orders = []
    for n, kind, picked, customer, at, discounted, _ in plans:
        quantities: dict[int, int] = defaultdict(int)
        for variant_id in picked:
            quantities[variant_id] += 1
        lines = sorted(quantities.items())
        discount = Discount("percent", Decimal("10")) if discounted else Discount()
        priced = price_order([LineInput(variants[v].price, q, rate, discount) for v, q in lines])
        priced_orders.append((lines, priced))
        orders.append(
            Order(
                channel=Channel.STORE if kind == FulfilmentKind.TAKE_NOW else Channel.ENDLESS_AISLE,
                status=Status.PLACED,
                location=store,
                customer_id=customer[0] if customer else None,
                contact_name=customer[1] if customer else "",
                contact_email=customer[2] if customer else "",
                ship_name=customer[1] if customer and kind == FulfilmentKind.SHIP else "",
                ship_line1=f"{100 + n} Main St" if kind == FulfilmentKind.SHIP else "",
                ship_city=store.city if kind == FulfilmentKind.SHIP else "",
                ship_postcode=store.postcode if kind == FulfilmentKind.SHIP else "",
                ship_country="US" if kind == FulfilmentKind.SHIP else "",
                subtotal=priced.subtotal,
                discount_total=priced.discount_total,
                total=priced.total,
                tax_total=priced.tax_total,
                paid_total=priced.total,
                idempotency_key=f"{KEY}:{store.code}:d{offset}:{n}",
                placed_by_label=DEMO_ACTOR.label,
                placed_at=at,
            )
        )
    Order.objects.bulk_create(orders)
    fulfilments: list[Fulfilment] = []
    for order, (_n, kind, _picked, _customer, at, _discounted, _fate) in zip(orders, plans, strict=True):
        age = (now - at).days
        source = warehouse if kind == FulfilmentKind.SHIP else store
        if kind == FulfilmentKind.TAKE_NOW:
            status, completed = Status.COLLECTED, at
        elif kind == FulfilmentKind.SHIP:
            status = Status.DELIVERED if age >= 4 else Status.SHIPPED if age >= 2 else Status.ALLOCATED
            completed = at + timedelta(days=3) if status == Status.DELIVERED else None
        else:
            status = Status.COLLECTED if age >= 2 else Status.READY_FOR_PICKUP if age >= 1 else Status.ALLOCATED
            completed = at + timedelta(days=1) if status == Status.COLLECTED else None
        fulfilments.append(
            Fulfilment(
                order=order,
                kind=kind,
                status=status,
                source_location=source,
                pickup_location=store if kind == FulfilmentKind.COLLECT else None,
                stock_location=source,
                eta=(at + timedelta(days=2 if kind == FulfilmentKind.SHIP else 0)).date(),
                carrier=rng.choice(CARRIERS) if status in (Status.SHIPPED, Status.DELIVERED) else "",
                tracking_number=f"DEMO{order.pk:08d}" if status in (Status.SHIPPED, Status.DELIVERED) else "",
                collection_code=f"{rng.randrange(1_000_000):06d}" if status == Status.READY_FOR_PICKUP else "",
                shipped_at=at + timedelta(days=1) if status in (Status.SHIPPED, Status.DELIVERED) else None,
                ready_at=at + timedelta(hours=3) if status in (Status.READY_FOR_PICKUP, Status.COLLECTED) else None,
                completed_at=completed,
            )
        )
    Fulfilment.objects.bulk_create(fulfilments)
    for fulfilment, order in zip(fulfilments, orders, strict=True):  # created_at is stamped on insert
        fulfilment.created_at = order.placed_at
    Fulfilment.objects.bulk_update(fulfilments, ["created_at"])
    order_lines: list[OrderLine] = []
    payments: list[Payment] = []
    events: list[OrderEvent] = []
    sold: list[OrderStockLine] = []
    fulfilled: dict[tuple[int, int], int] = defaultdict(int)
    returns: list[tuple[Order, Fulfilment, list[OrderLine], Location]] = []
    for order, fulfilment, plan, (lines, priced) in zip(orders, fulfilments, plans, priced_orders, strict=True):
        n, kind, _picked, _customer, at, discounted, fate = plan
        mine = []
        for position, ((variant_id, quantity), line) in enumerate(zip(lines, priced.lines, strict=True)):
            variant = variants[variant_id]
            order_line = OrderLine(
                order=order,
                fulfilment=fulfilment,
                variant=variant,
                sku=variant.sku,
                name=f"{variant.product.name} {variant.colour}/{variant.size}"[:255],
                kind=kind,
                source_location_id=fulfilment.source_location_id,
                quantity=quantity,
                unit_price=variant.price,
                line_discount=line.line_discount,
                total=line.total,
                tax_rate=store.tax_rate,
                tax_amount=line.tax,
                discount_kind="percent" if discounted else "",
                discount_value=Decimal("10") if discounted else Decimal("0"),
                picked_quantity=quantity if fulfilment.status not in (Status.ALLOCATED,) else 0,
                position=position,
            )
            mine.append(order_line)
            sold.append(
                OrderStockLine(
                    fulfilment.source_location_id,
                    variant_id,
                    quantity,
                    "sell" if kind == FulfilmentKind.TAKE_NOW else "commit",
                )
            )
            if kind != FulfilmentKind.TAKE_NOW and fulfilment.status in (
                Status.SHIPPED,
                Status.DELIVERED,
                Status.COLLECTED,
            ):
                fulfilled[(fulfilment.source_location_id, variant_id)] += quantity
        order_lines.extend(mine)
        tender = Tender.CARD if fate < 0.7 else Tender.CASH
        payment = Payment(order=order, tender=tender, amount=order.total, position=0)
        if tender == Tender.CARD:
            payment.card_last4 = f"{(order.pk * 7919) % 10000:04d}"
            payment.terminal_ref = f"DEMO-{order.pk}"
        else:
            payment.cash_tendered = order.total
            payment.change_given = Decimal("0.00")
        payments.append(payment)
        events.append(
            OrderEvent(
                order=order,
                kind="placed",
                message=f"Order placed at {store.name}.",
                location=store,
                actor_label=DEMO_ACTOR.label,
                created_at=at,
            )
        )
        events.append(
            OrderEvent(
                order=order,
                kind="payment",
                message=f"Paid {order.total} by {tender}.",
                location=store,
                actor_label=DEMO_ACTOR.label,
                created_at=at,
            )
        )
        if kind != FulfilmentKind.TAKE_NOW and fulfilment.status != Status.ALLOCATED:
            events.append(
                OrderEvent(
                    order=order,
                    fulfilment=fulfilment,
                    kind=fulfilment.status,
                    message=f"{fulfilment.get_status_display()}.",
                    actor_label=DEMO_ACTOR.label,
                    created_at=fulfilment.completed_at or fulfilment.shipped_at or fulfilment.ready_at or at,
                )
            )
        # About 4% of take-now sales come back (a third of them to another store), days later.
        if kind == FulfilmentKind.TAKE_NOW and fate > 0.96 and (now - at).days >= 3:
            where = store if rng.random() < 0.67 else rng.choice(return_stores)
            returns.append((order, fulfilment, mine, where))
    OrderLine.objects.bulk_create(order_lines)
    Payment.objects.bulk_create(payments)
    day_ref = Reference("demo-day", f"{store.code}:d{offset}")
    keys = [f"{KEY}:{store.code}:d{offset}"]
    stock.stock_order_place(actor=DEMO_ACTOR, lines=sold, reference=day_ref, idempotency_key=keys[0], savepoint=False)
    if fulfilled:
        keys.append(f"demo-fulfil:{store.code}:d{offset}")
        stock.stock_apply(
            actor=DEMO_ACTOR,
            changes=[
                LevelChange(loc, var, {"committed": -q, "on_hand": -q}) for (loc, var), q in sorted(fulfilled.items())
            ],
            reason=MovementReason.FULFIL,
            reference=day_ref,
            idempotency_key=keys[-1],
        )
    returned = _returns(returns, store, offset, here, keys, events)
    for order, fulfilment in zip(orders, fulfilments, strict=True):
        order.status = fulfilment.status
    returned_ids = {order.pk for order, *_ in returns}
    for order in orders:
        if order.pk in returned_ids:
            order.status = Status.RETURNED
    Order.objects.bulk_update(orders, ["status", "refunded_total"])
    OrderEvent.objects.bulk_create(events)
    # Date this day's movements to the day (the services stamp them with the time they ran): one
    # operation for the day's sales, so at its last sale, during opening hours.
    stock.ledger_backdate(
        movements=StockMovement.objects.filter(operation_key__in=[*keys, f"{keys[0]}:found"]),
        created_at=max(order.placed_at for order in orders),
    )
    if lost:
        LostDemand.objects.bulk_create(
            [
                LostDemand(
                    location=store,
                    variant_id=variant_id,
                    quantity=1,
                    fulfilment=FulfilmentKind.SHIP,
                    occurred_at=now - timedelta(days=offset),
                )
                for variant_id in lost
            ]
        )
    _record_purchases(orders, plans, priced_orders, variants, store)
    return {
        "orders": len(orders),
        "ship": sum(1 for f in fulfilments if f.kind == FulfilmentKind.SHIP),
        "collect": sum(1 for f in fulfilments if f.kind == FulfilmentKind.COLLECT),
        "returns": returned,
        "lost": len(lost),
    }


def _returns(
    returns: list[tuple[Order, Fulfilment, list[OrderLine], Location]],
    store: Location,
    offset: int,
    here: _Stock,
    keys: list[str],
    events: list[OrderEvent],
) -> int:
    """Whole orders brought back: restocked where returned, refunded to the (single) payment."""
    if not returns:
        return 0
    from .models import OrderReturn, ReturnLine

    changes: dict[tuple[int, int], int] = defaultdict(int)
    payments = {p.order_id: p for p in Payment.objects.filter(order__in=[o for o, *_ in returns])}
    return_rows = OrderReturn.objects.bulk_create(
        [
            OrderReturn(
                order=order,
                location=where,
                refund_total=order.total,
                actor_label=DEMO_ACTOR.label,
                idempotency_key=f"demo-return:{order.idempotency_key}",
            )
            for order, _f, _lines, where in returns
        ]
    )
    return_lines, refunds, lines_done = [], [], []
    for row, (order, fulfilment, lines, where) in zip(return_rows, returns, strict=True):
        for line in lines:
            line.returned_quantity = line.quantity
            lines_done.append(line)
            return_lines.append(
                ReturnLine(order_return=row, order_line=line, quantity=line.quantity, refund_amount=line.total)
            )
            changes[(where.pk, line.variant_id)] += line.quantity
            if where.pk == store.pk:
                here.give_back(line.variant_id, line.quantity)
        payment = payments[order.pk]
        payment.refunded_amount = order.total
        order.refunded_total = order.total
        fulfilment.status = Status.RETURNED
        refunds.append(
            Refund(
                payment=payment,
                order=order,
                order_return=row,
                amount=order.total,
                reason="return",
                location=where,
                actor_label=DEMO_ACTOR.label,
            )
        )
        events.append(
            OrderEvent(
                order=order,
                kind="returned",
                message=f"Returned at {where.name}.",
                location=where,
                actor_label=DEMO_ACTOR.label,
                created_at=order.placed_at + timedelta(days=2),
            )
        )
    ReturnLine.objects.bulk_create(return_lines)
    OrderLine.objects.bulk_update(lines_done, ["returned_quantity"])
    Payment.objects.bulk_update(list(payments.values()), ["refunded_amount"])
    Refund.objects.bulk_create([r for r in refunds if r.amount > 0])
    Fulfilment.objects.bulk_update([f for _o, f, _l, _w in returns], ["status"])
    keys.append(f"demo-return:{store.code}:d{offset}")
    stock.stock_apply(
        actor=DEMO_ACTOR,
        changes=[LevelChange(loc, var, {"on_hand": q}) for (loc, var), q in sorted(changes.items())],
        reason=MovementReason.RETURN,
        reason_code="restock",
        reference=Reference("demo-day", f"{store.code}:d{offset}"),
        idempotency_key=keys[-1],
    )
    return len(returns)


def _record_purchases(
    orders: list[Order], plans: list[Any], priced_orders: list[Any], variants: dict[int, Variant], store: Location
) -> None:
    """The customers app's purchase record for each order a customer placed (their history, tier)."""
    buyers = [
        (order, lines, priced)
        for order, (lines, priced) in zip(orders, priced_orders, strict=True)
        if order.customer_id
    ]
    if not buyers:
        return
    from customers.services import customer_record_purchase

    for order, lines, priced in buyers:
        assert order.customer_id is not None
        customer_record_purchase(
            customer_id=order.customer_id,
            order_ref=order_number(order.pk),
            channel="store",
            location_id=store.pk,
            amount=order.total,
            lines=[
                (
                    variant_id,
                    variants[variant_id].product.brand,
                    variants[variant_id].product.category,
                    quantity,
                    line.total,
                )
                for (variant_id, quantity), line in zip(lines, priced.lines, strict=True)
            ],
            occurred_at=order.placed_at,
            idempotency_key=f"order:{order.pk}:purchase",
            actor=DEMO_ACTOR,
        )
