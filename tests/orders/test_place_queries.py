"""The query count of placing an order is fixed, whatever the number of lines."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.services import order_place
from tests.factories.inventory import VariantFactory
from tests.factories.orders import card, collect, draft, give_stock, ship, take_now

pytestmark = pytest.mark.django_db

# Idempotency check, variants, locations, sourcing candidates, order, fulfilments, lines, payments,
# events (9); stock (inventory.stock_order_place): lock levels, movements, levels, live event (4);
# savepoint and release of the test's own transaction (2). The customer's purchase
# record and points go to a task after commit. Pinned so a per-line query cannot creep in.
PLACE_QUERIES = 15


def _order(network, associate, customer, lines_per_kind):
    variants = [VariantFactory() for _ in range(lines_per_kind)]
    for variant in variants:
        give_stock(network["store"], variant, 5)
        give_stock(network["warehouse"], variant, 5)
    lines = []
    for variant in variants:
        lines += [take_now(variant), ship(variant), collect(variant)]
    total = sum((v.price for v in variants), Decimal("0")) * 3
    return draft(location=network["store"], customer=customer, lines=lines, tenders=[card(total)])


def _count(network, associate, customer, lines_per_kind):
    order_draft = _order(network, associate, customer, lines_per_kind)
    with CaptureQueriesContext(connection) as queries:
        result = order_place(actor=associate, draft=order_draft)
    assert result.order.lines.count() == 3 * lines_per_kind
    return len(queries)


@pytest.fixture
def returning_customer(network, associate, customer):
    """A customer who bought before (their loyalty account exists: the first order creates it)."""
    order_place(actor=associate, draft=_order(network, associate, customer, 1))
    return customer


def test_placing_costs_the_same_for_3_and_15_lines(network, associate, returning_customer):
    assert _count(network, associate, returning_customer, 1) == _count(network, associate, returning_customer, 5)


def test_placing_query_count_is_pinned(network, associate, returning_customer, django_assert_num_queries):
    order_draft = _order(network, associate, returning_customer, 2)

    with django_assert_num_queries(PLACE_QUERIES):
        order_place(actor=associate, draft=order_draft)
