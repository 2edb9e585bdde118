"""Carts, orders, fulfilments, payments, gift cards and returns.

An order is sold at a location (or online) and holds lines. Lines are grouped into fulfilments:
one per way the goods reach the customer from one source (take now, ship from X, collect at Y
from X). A fulfilment moves through a state machine (orders.states); the order's status follows
its fulfilments. Every change leaves an OrderEvent (the timeline).

Money is Decimal with two places. Prices include tax; an order line stores the tax it contains.
Invariants the database enforces: totals are not negative, payments are positive and refunds never
exceed them, a gift card balance never goes below zero, an idempotency key places one order.

Every write goes through orders.services; these models hold fields and constraints only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value

from inventory.models import Location, Reservation, Variant

ORDER_NUMBER_PREFIX = "SO-"


# Money columns hold whole cents. SQLite keeps decimals as floating point, so an equality between
# a column and arithmetic on other columns (64.99 - 6.50) can miss by a hair there; comparing
# within half a cent is exact on PostgreSQL (every value is a whole cent) and right on SQLite.
HALF_CENT = Value(Decimal("0.005"), output_field=models.DecimalField(max_digits=12, decimal_places=3))


def cents_equal_condition(field: str, expression: Any) -> Q:
    return Q(**{f"{field}__gte": expression - HALF_CENT}) & Q(**{f"{field}__lte": expression + HALF_CENT})


def cents_equal(field: str, expression: Any, *, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=cents_equal_condition(field, expression), name=name)


class Channel(models.TextChoices):
    STORE = "store", "Store"
    ENDLESS_AISLE = "endless_aisle", "Endless aisle"
    ONLINE = "online", "Online"


class FulfilmentKind(models.TextChoices):
    TAKE_NOW = "take_now", "Take now"
    SHIP = "ship", "Ship to customer"
    COLLECT = "collect", "Collect in store"


class Status(models.TextChoices):
    PLACED = "placed", "Placed"
    ALLOCATED = "allocated", "Allocated"
    PICKING = "picking", "Picking"
    PACKED = "packed", "Packed"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    READY_FOR_PICKUP = "ready_for_pickup", "Ready for pickup"
    COLLECTED = "collected", "Collected"
    CANCELLED = "cancelled", "Cancelled"
    RETURNED = "returned", "Returned"


class DiscountKind(models.TextChoices):
    PERCENT = "percent", "Percent"
    AMOUNT = "amount", "Amount"


def money_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=12, decimal_places=2, **kwargs)


# --- Orders ----------------------------------------------------------------------------------------


class OrderQuerySet(models.QuerySet["Order"]):
    def for_locations(self, location_ids: Any) -> OrderQuerySet:
        """Orders sold at, or fulfilled from / collected at, one of `location_ids` (None: all)."""
        if location_ids is None:
            return self
        return self.filter(
            Q(location_id__in=location_ids)
            | Q(fulfilments__source_location_id__in=location_ids)
            | Q(fulfilments__pickup_location_id__in=location_ids)
        ).distinct()


class Order(models.Model):
    """A sale. `number` (SO-000123) is derived from the primary key, so it costs no extra query."""

    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.STORE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLACED, db_index=True)
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="orders", help_text="Sold here."
    )
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    # Contact and delivery details as given for this order (scrubbed when the customer is erased).
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.CharField(max_length=254, blank=True)
    contact_phone = models.CharField(max_length=20, blank=True)
    ship_name = models.CharField(max_length=200, blank=True)
    ship_line1 = models.CharField(max_length=200, blank=True)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100, blank=True)
    ship_region = models.CharField(max_length=100, blank=True)
    ship_postcode = models.CharField(max_length=20, blank=True)
    ship_country = models.CharField(max_length=2, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    subtotal = money_field(default=0, help_text="Lines at full price, tax included.")
    discount_total = money_field(default=0)
    total = money_field(default=0, help_text="What the customer pays, tax included.")
    tax_total = money_field(default=0, help_text="Tax contained in the total.")
    paid_total = money_field(default=0)
    refunded_total = money_field(default=0)
    order_discount_kind = models.CharField(max_length=10, choices=DiscountKind.choices, blank=True)
    order_discount_value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    discount_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    external_ref = models.CharField(max_length=64, blank=True, db_index=True, help_text="e.g. the online order id.")
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    placed_by_label = models.CharField(max_length=100, blank=True)
    placed_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(subtotal__gte=0)
                & Q(discount_total__gte=0)
                & Q(total__gte=0)
                & Q(tax_total__gte=0)
                & Q(paid_total__gte=0)
                & Q(refunded_total__gte=0),
                name="order_money_non_negative",
            ),
            models.CheckConstraint(condition=Q(tax_total__lte=F("total")), name="order_tax_within_total"),
            models.CheckConstraint(condition=Q(refunded_total__lte=F("paid_total")), name="order_refund_within_paid"),
            cents_equal("total", F("subtotal") - F("discount_total"), name="order_total_is_subtotal_less_discount"),
        ]
        indexes = [
            models.Index(fields=["location", "-placed_at"], name="order_location_placed"),
            models.Index(fields=["customer", "-placed_at"], name="order_customer_placed"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return order_number(self.pk)

    @property
    def balance_due(self) -> Any:
        return self.total - self.paid_total

    @property
    def exchanged_total(self) -> Any:
        """Returned goods' value that paid for replacements (refunded to the "exchange" tender):
        part of `refunded_total` for the books, but no money went back. Reads the payments
        (prefetch them for lists)."""
        return sum((p.amount for p in self.payments.all() if p.tender == Tender.EXCHANGE), Decimal("0"))

    @property
    def refunded_to_customer(self) -> Any:
        """What actually went back to the customer's card, cash, gift card or points."""
        return self.refunded_total - self.exchanged_total


def order_number(pk: int | None) -> str:
    return f"{ORDER_NUMBER_PREFIX}{pk:06d}" if pk else "SO-new"


def parse_order_number(value: str) -> int | None:
    """`SO-000123`, `so-123` or `123` -> 123; anything else -> None."""
    text = (value or "").strip().upper()
    if text.startswith(ORDER_NUMBER_PREFIX):
        text = text[len(ORDER_NUMBER_PREFIX) :]
    # ASCII only: str.isdigit() also accepts '³', which int() refuses.
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 12 else None


class Fulfilment(models.Model):
    """Lines of one order that reach the customer the same way from the same source.

    `source_location` is where the stock was committed; `stock_location` is where the committed
    units are now (the pickup store once a transfer for a collect line was received).
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fulfilments")
    kind = models.CharField(max_length=10, choices=FulfilmentKind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLACED)
    source_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    pickup_location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    stock_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    eta = models.DateField(null=True, blank=True, help_text="When it can arrive or be collected.")
    carrier = models.CharField(max_length=40, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True)
    collection_code = models.CharField(max_length=6, blank=True)
    code_attempts = models.PositiveSmallIntegerField(default=0)
    transfer_ref = models.CharField(max_length=64, blank=True, help_text="The transfer bringing the stock here.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="collect") | Q(pickup_location__isnull=False), name="fulfilment_collect_has_pickup"
            ),
        ]
        indexes = [
            models.Index(fields=["source_location", "kind", "status"], name="fulfilment_source_status"),
            models.Index(fields=["pickup_location", "status"], name="fulfilment_pickup_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} of order {self.order_id}"

    @property
    def needs_transfer(self) -> bool:
        return self.kind == FulfilmentKind.COLLECT and self.pickup_location_id != self.source_location_id

    @property
    def handover_location_id(self) -> int:
        """Where the customer gets the goods from us (the pickup store, or the source)."""
        return self.pickup_location_id or self.source_location_id


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines")
    fulfilment = models.ForeignKey(Fulfilment, on_delete=models.PROTECT, related_name="lines")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=FulfilmentKind.choices)
    source_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    unit_price = money_field(help_text="Tax included, before discounts.")
    line_discount = money_field(default=0)
    order_discount_share = money_field(default=0)
    total = money_field(help_text="Paid for the line: quantity x unit price less discounts.")
    tax_rate = models.DecimalField(max_digits=5, decimal_places=4, default=0)
    tax_amount = money_field(default=0)
    discount_kind = models.CharField(max_length=10, choices=DiscountKind.choices, blank=True)
    discount_value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    discount_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    picked_quantity = models.PositiveIntegerField(default=0)
    cancelled_quantity = models.PositiveIntegerField(default=0)
    returned_quantity = models.PositiveIntegerField(default=0)
    exchange_for = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replacements",
        help_text="The returned line this one replaces (an exchange).",
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order_id", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orderline_quantity_positive"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0)
                & Q(line_discount__gte=0)
                & Q(order_discount_share__gte=0)
                & Q(total__gte=0)
                & Q(tax_amount__gte=0),
                name="orderline_money_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(cancelled_quantity__lte=F("quantity") - F("returned_quantity")),
                name="orderline_cancelled_returned_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(picked_quantity__lte=F("quantity")), name="orderline_picked_within_quantity"
            ),
        ]
        indexes = [models.Index(fields=["variant", "order"], name="orderline_variant_order")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def open_quantity(self) -> int:
        """Units still to be handed over or returned (not cancelled, not returned)."""
        return self.quantity - self.cancelled_quantity - self.returned_quantity


class OrderEvent(models.Model):
    """The order's timeline: who did what, when. Append-only."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    fulfilment = models.ForeignKey(Fulfilment, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=30)
    message = models.CharField(max_length=255)
    data = models.JSONField(default=dict, blank=True)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "id"], name="orderevent_order")]

    def __str__(self) -> str:
        return f"{self.kind} on order {self.order_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise RuntimeError("Order events are append-only.")
        super().save(*args, **kwargs)


# --- Payments --------------------------------------------------------------------------------------


class Tender(models.TextChoices):
    CARD = "card", "Card"
    CASH = "cash", "Cash"
    GIFT_CARD = "gift_card", "Gift card"
    STORE_CREDIT = "store_credit", "Store credit"
    LOYALTY = "loyalty", "Loyalty points"
    ONLINE = "online", "Paid online"
    EXCHANGE = "exchange", "Exchanged goods"


class GiftCardKind(models.TextChoices):
    GIFT_CARD = "gift_card", "Gift card"
    STORE_CREDIT = "store_credit", "Store credit"


class GiftCard(models.Model):
    """A prepaid balance: a gift card, or store credit issued to a customer."""

    code = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=20, choices=GiftCardKind.choices, default=GiftCardKind.GIFT_CARD)
    balance = money_field(default=0)
    currency = models.CharField(max_length=3, default="USD")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="gift_cards"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="giftcard_balance_non_negative")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} …{self.code[-4:]}"


class GiftCardEntry(models.Model):
    """One signed change of a gift card balance (issue, redeem, refund). Append-only."""

    card = models.ForeignKey(GiftCard, on_delete=models.PROTECT, related_name="entries")
    amount = money_field()
    balance_after = money_field()
    reason = models.CharField(max_length=20)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=100)
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "gift card entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="giftcardentry_amount_not_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="giftcardentry_balance_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.amount} on card {self.card_id}"


class Payment(models.Model):
    """One tender of an order. Refunds are recorded against it (Refund), never by editing `amount`."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    tender = models.CharField(max_length=20, choices=Tender.choices)
    amount = money_field()
    refunded_amount = money_field(default=0)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    terminal_ref = models.CharField(max_length=64, blank=True)
    cash_tendered = money_field(null=True, blank=True)
    change_given = money_field(null=True, blank=True)
    gift_card = models.ForeignKey(GiftCard, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    loyalty_points = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order_id", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payment_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=~Q(tender="card") | Q(card_last4__regex=r"^[0-9]{4}$"), name="payment_card_has_last4"
            ),
            models.CheckConstraint(
                condition=~Q(tender="cash")
                | (
                    Q(cash_tendered__gte=F("amount"))
                    & cents_equal_condition("change_given", F("cash_tendered") - F("amount"))
                ),
                name="payment_cash_change",
            ),
            models.CheckConstraint(
                condition=~Q(tender__in=["gift_card", "store_credit"]) | Q(gift_card__isnull=False),
                name="payment_gift_card_named",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_tender_display()} {self.amount}"

    @property
    def refundable(self) -> Any:
        return self.amount - self.refunded_amount


class Refund(models.Model):
    """Money given back against one original payment (a cancellation or a return)."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    order_return = models.ForeignKey(
        "OrderReturn", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    amount = money_field()
    reason = models.CharField(max_length=20, help_text="cancel or return")
    terminal_ref = models.CharField(max_length=64, blank=True)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"Refund {self.amount} of payment {self.payment_id}"


# --- Returns -----------------------------------------------------------------------------------------


class OrderReturn(models.Model):
    """Items of an order brought back to a store (any store, any channel)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="returns")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    refund_total = money_field(default=0)
    note = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(refund_total__gte=0), name="return_refund_non_negative")]

    def __str__(self) -> str:
        return f"Return #{self.pk} of order {self.order_id}"


class ReturnLine(models.Model):
    order_return = models.ForeignKey(OrderReturn, on_delete=models.PROTECT, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="return_lines")
    quantity = models.PositiveIntegerField()
    damaged = models.BooleanField(default=False)
    refund_amount = money_field(default=0)
    replacement = models.ForeignKey(OrderLine, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="returnline_quantity_positive"),
            models.CheckConstraint(condition=Q(refund_amount__gte=0), name="returnline_refund_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x line {self.order_line_id}"


# --- The cart on the tablet ----------------------------------------------------------------------------


class Cart(models.Model):
    """The sale being rung up by one member of staff at one location. Survives a page reload.

    `checkout_key` is the idempotency key of placing this cart's order: the same key on a retry
    or a double tap yields the one order; a new key is drawn once the order is placed or the
    cart is cleared.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    checkout_key = models.CharField(max_length=64)
    order_discount_kind = models.CharField(max_length=10, choices=DiscountKind.choices, blank=True)
    order_discount_value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    order_discount_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ship_name = models.CharField(max_length=200, blank=True)
    ship_line1 = models.CharField(max_length=200, blank=True)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100, blank=True)
    ship_region = models.CharField(max_length=100, blank=True)
    ship_postcode = models.CharField(max_length=20, blank=True)
    ship_country = models.CharField(max_length=2, default="US")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "location"], name="cart_one_per_user_location")]

    def __str__(self) -> str:
        return f"Cart #{self.pk}"


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    kind = models.CharField(max_length=10, choices=FulfilmentKind.choices, default=FulfilmentKind.TAKE_NOW)
    pickup_location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    unit_price = money_field()
    discount_kind = models.CharField(max_length=10, choices=DiscountKind.choices, blank=True)
    discount_value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    discount_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="cartline_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.variant_id} ({self.kind})"


class CartHold(models.Model):
    """Stock held for a ship or collect cart line at one source (a line may be split over two)."""

    line = models.ForeignKey(CartLine, on_delete=models.CASCADE, related_name="holds")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()
    reservation = models.ForeignKey(Reservation, on_delete=models.PROTECT, related_name="+")
    eta = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="carthold_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} of line {self.line_id} at {self.location_id}"


class ManagerPin(models.Model):
    """A manager's short PIN for approving discounts on the tablet (hashed like a password)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="manager_pin")
    pin_hash = models.CharField(max_length=200)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"PIN of user {self.user_id}"


class LostDemand(models.Model):
    """A customer asked for units no location could give (an endless-aisle request that failed to
    source). Read by insights (size curves count lost demand; see insights.conf LOST_DEMAND_MODEL)."""

    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()
    fulfilment = models.CharField(max_length=10, choices=FulfilmentKind.choices)
    occurred_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="lostdemand_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.variant_id} lost at {self.location_id}"
