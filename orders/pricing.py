"""Money: prices include tax; discounts per line and per order; tax contained in each line.

Pure functions over Decimal, no database. Rounding is half-up to cents.

- A line discount is a percent of the line's gross (quantity x unit price) or an amount, never
  more than the gross.
- An order discount applies to what is left after line discounts and is shared over the lines in
  proportion to what each line costs; the cents left over by rounding go to the largest line.
- The tax a line contains is `total - total / (1 + rate)` at the line's tax rate.
- A discount above OMNI_DISCOUNT_APPROVAL_PERCENT (default 20) percent needs a manager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings

from .errors import InvalidDiscountError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal("100")


def cents(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def parse_money(raw: object, *, field: str = "amount") -> Decimal:
    """A non-negative amount of money from user input, or InvalidDiscountError-style 400."""
    from .errors import InvalidAmountError

    try:
        value = Decimal(str(raw).strip().replace(",", ""))
        # quantize raises too, for a value past the context's precision ("1e30" was a 500)
        exact = value.is_finite() and value == value.quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise InvalidAmountError(field) from None
    if not exact or value < 0:
        raise InvalidAmountError(field)
    return cents(value)


def tax_included(total: Decimal, rate: Decimal) -> Decimal:
    """The tax contained in a tax-inclusive `total` at `rate` (0.0825 for 8.25%)."""
    if rate <= 0 or total <= 0:
        return ZERO
    return cents(total - total / (1 + rate))


@dataclass(frozen=True)
class Discount:
    kind: str = ""  # "percent", "amount" or "" (none)
    value: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.kind not in ("", "percent", "amount"):
            raise InvalidDiscountError("A discount is a percent or an amount.")
        if self.value < 0:
            raise InvalidDiscountError("A discount cannot be negative.")
        if self.kind == "percent" and self.value > HUNDRED:
            raise InvalidDiscountError("A discount cannot be more than 100%.")

    @property
    def is_set(self) -> bool:
        return bool(self.kind) and self.value > 0

    def amount_of(self, base: Decimal) -> Decimal:
        """What this discount takes off `base` (never more than `base`)."""
        if not self.is_set or base <= 0:
            return ZERO
        if self.kind == "percent":
            return min(base, cents(base * self.value / HUNDRED))
        return min(base, cents(self.value))


NO_DISCOUNT = Discount()


def approval_threshold_percent() -> Decimal:
    return Decimal(str(getattr(settings, "OMNI_DISCOUNT_APPROVAL_PERCENT", 20)))


def percent_of(part: Decimal, whole: Decimal) -> Decimal:
    return ZERO if whole <= 0 else (part * HUNDRED / whole)


@dataclass(frozen=True)
class LineInput:
    unit_price: Decimal
    quantity: int
    tax_rate: Decimal
    discount: Discount = NO_DISCOUNT


@dataclass(frozen=True)
class PricedLine:
    gross: Decimal
    line_discount: Decimal
    order_discount_share: Decimal
    total: Decimal
    tax: Decimal

    @property
    def line_discount_percent(self) -> Decimal:
        return percent_of(self.line_discount, self.gross)


@dataclass(frozen=True)
class PricedOrder:
    lines: tuple[PricedLine, ...]
    subtotal: Decimal
    order_discount: Decimal
    discount_total: Decimal
    total: Decimal
    tax_total: Decimal

    @property
    def order_discount_percent(self) -> Decimal:
        after_lines = self.subtotal - (self.discount_total - self.order_discount)
        return percent_of(self.order_discount, after_lines)

    def needs_approval(self, threshold: Decimal | None = None) -> bool:
        """True when one line discount or the order discount is above the threshold percent."""
        limit = approval_threshold_percent() if threshold is None else threshold
        return self.order_discount_percent > limit or any(line.line_discount_percent > limit for line in self.lines)


def price_order(lines: Sequence[LineInput], order_discount: Discount = NO_DISCOUNT) -> PricedOrder:
    grosses = [cents(line.unit_price * line.quantity) for line in lines]
    line_discounts = [line.discount.amount_of(gross) for line, gross in zip(lines, grosses, strict=True)]
    nets = [gross - discount for gross, discount in zip(grosses, line_discounts, strict=True)]
    net_total = sum(nets, ZERO)
    order_off = order_discount.amount_of(net_total)
    shares = _share(order_off, nets)
    priced = []
    for line, gross, line_discount, net, share in zip(lines, grosses, line_discounts, nets, shares, strict=True):
        total = net - share
        priced.append(PricedLine(gross, line_discount, share, total, tax_included(total, line.tax_rate)))
    subtotal = sum(grosses, ZERO)
    discount_total = sum(line_discounts, ZERO) + order_off
    return PricedOrder(
        lines=tuple(priced),
        subtotal=subtotal,
        order_discount=order_off,
        discount_total=discount_total,
        total=subtotal - discount_total,
        tax_total=sum((line.tax for line in priced), ZERO),
    )


def _share(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `amount` (at most the sum of `weights`) over `weights` proportionally, in cents."""
    total = sum(weights, ZERO)
    if amount <= 0 or total <= 0:
        return [ZERO for _ in weights]
    shares = [(amount * weight / total).quantize(CENT, rounding="ROUND_DOWN") for weight in weights]
    remainder = amount - sum(shares, ZERO)
    # Hand out the leftover cents one at a time, largest weight first, never beyond a weight.
    order = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    while remainder > 0:
        for i in order:
            if remainder > 0 and shares[i] + CENT <= weights[i]:
                shares[i] += CENT
                remainder -= CENT
    return shares


def split_amount(amount: Decimal, quantities: Sequence[int]) -> list[Decimal]:
    """Share a line's money over the parts it was split into, by quantity; parts sum to `amount`."""
    count = sum(quantities)
    shares = [(amount * q / count).quantize(CENT, rounding="ROUND_DOWN") for q in quantities]
    shares[0] += amount - sum(shares, ZERO)
    return shares


def refund_for(*, line_total: Decimal, line_quantity: int, already_refunded_units: int, units: int) -> Decimal:
    """What `units` of a line are worth back: the line total pro rata, the last unit taking the cents.

    Refunding a line unit by unit adds up to exactly what was paid for it.
    """
    if units <= 0:
        return ZERO
    if already_refunded_units + units >= line_quantity:
        paid_for_earlier = cents(line_total * already_refunded_units / line_quantity)
        return line_total - paid_for_earlier
    before = cents(line_total * already_refunded_units / line_quantity)
    after = cents(line_total * (already_refunded_units + units) / line_quantity)
    return after - before
