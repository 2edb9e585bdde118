"""orders.demo._Shoppers: demo customers buy at different rates and some stop buying, so the
customer-value models have heterogeneity and dropout to fit (they found neither before)."""

from __future__ import annotations

import random
from collections import Counter

from orders.demo import LAPSING_SHARE, _Shoppers

CUSTOMERS = [(pk, f"Customer {pk}", f"c{pk}@example.com") for pk in range(1, 401)]
DAYS = 90


def _picks(shoppers: _Shoppers, offsets) -> Counter:
    rng = random.Random(7)
    return Counter(shoppers.pick(rng, offset)[0] for offset in offsets for _ in range(20))


def test_a_few_regulars_make_many_of_the_visits():
    picks = _picks(_Shoppers(CUSTOMERS, DAYS), range(DAYS, 0, -1))

    busiest = sum(count for _, count in picks.most_common(len(CUSTOMERS) // 5))
    assert busiest > 0.45 * sum(picks.values())  # uniform choice gives ~0.2 (+ noise)


def test_lapsed_customers_buy_nothing_after_they_lapse():
    shoppers = _Shoppers(CUSTOMERS, DAYS)
    lapsed = {customer[0]: after for customer, _, after in shoppers._traits if after}

    recent = _picks(shoppers, range(10, 0, -1))  # the last ten days

    assert abs(len(lapsed) / len(CUSTOMERS) - LAPSING_SHARE) < 0.1
    assert all(lapsed.get(customer_id, 0) <= 10 for customer_id in recent)
    assert any(after > 10 for after in lapsed.values())


def test_the_same_customers_get_the_same_traits_on_every_load():
    first, again = _Shoppers(CUSTOMERS, DAYS), _Shoppers(list(reversed(CUSTOMERS)), DAYS)

    assert sorted(first._traits) == sorted(again._traits)
