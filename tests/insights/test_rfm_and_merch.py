"""Pure pieces: RFM scores and segments, value bands, size curves and buy splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from insights import merch, rfm


def test_quintile_scores_cut_percent_ranks_in_fifths():
    scores = rfm.quintile_score([0.0, 0.19, 0.2, 0.39, 0.4, 0.6, 0.79, 0.8, 1.0])
    assert scores.tolist() == [1, 1, 2, 2, 3, 4, 4, 5, 5]


def test_frequency_scores_use_fixed_bands():
    scores = rfm.frequency_score([1, 2, 3, 4, 5, 6, 40], [1, 2, 3, 4, 6])
    assert scores.tolist() == [1, 2, 3, 4, 4, 5, 5]
    with pytest.raises(ValueError, match="five ascending"):
        rfm.frequency_score([1], [3, 2, 1, 0, 5])


@pytest.mark.parametrize(
    ("r", "f", "m", "new", "segment"),
    [
        (5, 1, 1, True, "new"),
        (5, 5, 1, False, "champions"),
        (4, 4, 5, False, "champions"),
        (3, 5, 5, False, "loyal"),
        (5, 3, 1, False, "loyal"),
        (4, 2, 2, False, "potential_loyalist"),
        (5, 1, 3, False, "promising"),
        (3, 2, 2, False, "needs_attention"),
        (1, 5, 4, False, "cant_lose"),
        (1, 5, 3, False, "at_risk"),
        (2, 3, 1, False, "at_risk"),
        (2, 2, 5, False, "hibernating"),
        (1, 2, 5, False, "lapsed"),
        (1, 1, 1, False, "lapsed"),
    ],
)
def test_segment_rules(r, f, m, new, segment):
    result = rfm.segments(np.array([r]), np.array([f]), np.array([m]), np.array([new]))
    assert result.tolist() == [segment]


@given(r=st.integers(1, 5), f=st.integers(1, 5), m=st.integers(1, 5))
def test_every_score_combination_has_a_segment(r, f, m):
    result = rfm.segments(np.array([r]), np.array([f]), np.array([m]), np.array([False]))
    assert result[0] in {"champions", "loyal", "potential_loyalist", "promising", "needs_attention",
                         "cant_lose", "at_risk", "hibernating", "lapsed"}  # fmt: skip


def test_at_risk_flag_covers_fading_repeat_buyers_but_not_lapsed_ones():
    segment = np.array(["loyal", "loyal", "lapsed", "at_risk", "promising"])
    frequency = np.array([3, 3, 2, 3, 0])
    p_alive = np.array([0.3, 0.9, 0.1, 0.9, np.nan])
    assert rfm.at_risk_flags(segment, frequency, p_alive, 0.5).tolist() == [True, False, False, True, False]


def test_value_bands_rank_predicted_value():
    values = np.array([float(v) for v in range(1, 101)] + [np.nan])
    bands = rfm.value_bands(values)
    assert bands[-1] == ""
    assert (bands[:100] == "top").sum() == 5 and bands[99] == "top"
    assert (bands[:100] == "high").sum() == 15
    assert (bands[:100] == "medium").sum() == 30
    assert (bands[:100] == "low").sum() == 50


def test_sizes_sort_in_shop_order():
    sizes = ["XL", "10", "M", "One size", "XS", "2XL", "8", "S", "L", "30/32"]
    assert sorted(sizes, key=merch.size_sort_key) == ["XS", "S", "M", "L", "XL", "2XL", "8", "10", "30/32", "One size"]


def test_size_curve_adds_lost_demand_to_sales():
    curve = merch.size_curve({"S": (10, 0), "M": (20, 10), "L": (10, 0)})
    assert [(s.size, s.demand, round(s.share, 3)) for s in curve] == [("S", 10, 0.2), ("M", 30, 0.6), ("L", 10, 0.2)]


def test_a_store_with_little_history_leans_on_the_chain_curve():
    chain = {"S": (100, 0), "M": (200, 0), "L": (100, 0)}
    # a store that sold 2 L only: alone it says "buy only L"
    curve = {s.size: s.share for s in merch.size_curve({"L": (2, 0)}, chain_counts=chain, prior_units=20)}
    assert curve["L"] == pytest.approx((2 + 20 * 0.25) / 22)
    assert curve["M"] == pytest.approx(20 * 0.5 / 22)
    assert sum(curve.values()) == pytest.approx(1)


def test_buy_split_uses_largest_remainders_and_sums_to_the_quantity():
    curve = merch.size_curve({"XS": (1, 0), "S": (3, 0), "M": (4, 0), "L": (3, 0), "XL": (1, 0)})
    split = merch.buy_split(curve, 10)
    # exact shares 0.83, 2.5, 3.33, 2.5, 0.83: the floors (0, 2, 3, 2, 0) leave 3 units, which go to
    # the largest remainders: XS and XL (.83), then S (.5, tied with L: the earlier size wins)
    assert [(line.size, line.units) for line in split] == [("XS", 1), ("S", 3), ("M", 3), ("L", 2), ("XL", 1)]
    assert merch.buy_split(curve, 0) == [merch.BuyLine(s.size, s.share, 0) for s in curve]
    with pytest.raises(ValueError):
        merch.buy_split(curve, -1)


@given(
    demand=st.dictionaries(st.sampled_from(["XS", "S", "M", "L", "XL", "XXL"]), st.integers(0, 500), min_size=1),
    quantity=st.integers(0, 5000),
)
def test_buy_split_is_within_one_unit_of_the_exact_share(demand, quantity):
    curve = merch.size_curve({size: (units, 0) for size, units in demand.items()})
    split = merch.buy_split(curve, quantity)
    if sum(demand.values()) == 0:
        assert all(line.units == 0 for line in split)
        return
    assert sum(line.units for line in split) == quantity
    for line in split:
        assert abs(line.units - quantity * line.share) < 1
