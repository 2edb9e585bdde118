"""Money: tax contained in prices, discounts, shares and refunds add up to the cent."""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.pricing import Discount, LineInput, price_order, refund_for, split_amount, tax_included

D = Decimal


def test_tax_included_rounds_half_up():
    assert tax_included(D("49.00"), D("0.0825")) == D("3.73")
    assert tax_included(D("10.00"), D("0")) == D("0.00")


def test_line_and_order_discounts():
    priced = price_order(
        [LineInput(D("100.00"), 1, D("0.0825"), Discount("percent", D("10"))), LineInput(D("50.00"), 2, D("0.0825"))],
        Discount("amount", D("19.00")),
    )

    assert priced.subtotal == D("200.00")
    assert priced.lines[0].line_discount == D("10.00")
    assert priced.order_discount == D("19.00")
    assert sum(line.order_discount_share for line in priced.lines) == D("19.00")
    assert priced.total == D("171.00")
    assert priced.discount_total == D("29.00")


def test_approval_above_the_threshold():
    small = price_order([LineInput(D("100.00"), 1, D("0"), Discount("percent", D("20")))])
    large = price_order([LineInput(D("100.00"), 1, D("0"), Discount("amount", D("20.01")))])

    assert not small.needs_approval(D("20"))
    assert large.needs_approval(D("20"))


amounts = st.decimals(min_value=D("0.01"), max_value=D("999.99"), places=2)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prices=st.lists(amounts, min_size=1, max_size=6), off=st.integers(min_value=0, max_value=100))
def test_order_discount_shares_never_exceed_a_line_and_add_up(prices, off):
    priced = price_order([LineInput(p, 1, D("0.1")) for p in prices], Discount("percent", D(off)))

    assert sum(line.order_discount_share for line in priced.lines) == priced.order_discount
    assert all(line.total >= 0 for line in priced.lines)
    assert priced.total == sum(line.total for line in priced.lines)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(total=amounts, quantity=st.integers(min_value=1, max_value=7))
def test_refunding_unit_by_unit_adds_up_to_what_was_paid(total, quantity):
    parts = [
        refund_for(line_total=total, line_quantity=quantity, already_refunded_units=i, units=1) for i in range(quantity)
    ]

    assert sum(parts) == total


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amount=amounts, quantities=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=3))
def test_split_amount_adds_up(amount, quantities):
    assert sum(split_amount(amount, quantities)) == amount
