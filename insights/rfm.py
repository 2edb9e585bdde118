"""RFM scores and named segments, vectorised over all customers (numpy, no database).

Scores run from 1 (worst) to 5 (best):
- R, recency: quintile of the last purchase day among all scored customers (most recent fifth = 5).
- F, frequency: purchase days against fixed bands (conf FREQUENCY_BANDS, default 1, 2, 3, 4-5, 6+).
  Quintiles do not work for F: most customers of a fashion retailer buy once, so a fifth of them
  cannot be told apart from the next fifth.
- M, monetary: quintile of the total net spend.
Quintiles come from PERCENT_RANK in the database (ties share a score): score = 1 + min(4, floor(5 pr)).

Segments (first matching rule wins; a grid on R and F, the usual RFM practice, plus M for "can't lose"):

| segment            | rule                                                      |
|--------------------|-----------------------------------------------------------|
| new                | one purchase day, first purchase within NEW_CUSTOMER_DAYS |
| champions          | R >= 4 and F >= 4                                          |
| loyal              | R >= 3 and F >= 3                                          |
| potential_loyalist | R >= 4 and F = 2                                           |
| promising          | R >= 4 and F = 1                                           |
| needs_attention    | R = 3 (F <= 2)                                             |
| cant_lose          | R = 1 and F >= 4 and M >= 4                                |
| at_risk            | R <= 2 and F >= 3                                          |
| hibernating        | R = 2 (F <= 2)                                             |
| lapsed             | R = 1 (F <= 2)                                             |

"At risk" (the flag shown at checkout) is wider than the segment: a customer who bought more than
once and whom BG/NBD gives less than AT_RISK_P_ALIVE chance of still being active, unless they are
already lapsed (R = 1, F <= 2), or anyone in the at_risk / cant_lose segments.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from insights.models import Segment, ValueBand

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def quintile_score(percent_rank: npt.ArrayLike) -> IntArray:
    """1..5 from PERCENT_RANK (0..1): [0, 0.2) -> 1, ..., [0.8, 1] -> 5."""
    ranks = np.asarray(percent_rank, dtype=np.float64)
    return (1 + np.minimum(4, np.floor(5 * ranks + 1e-9))).astype(np.int64)


def frequency_score(purchase_days: npt.ArrayLike, bands: Sequence[int]) -> IntArray:
    """1..5: the number of `bands` thresholds (ascending, five of them) the purchase days reach."""
    if len(bands) != 5 or list(bands) != sorted(bands) or bands[0] < 1:
        raise ValueError("FREQUENCY_BANDS needs five ascending thresholds, the first >= 1.")
    days = np.asarray(purchase_days, dtype=np.int64)
    return np.clip(np.searchsorted(np.asarray(bands), days, side="right"), 1, 5).astype(np.int64)


def segments(r: IntArray, f: IntArray, m: IntArray, is_new: npt.NDArray[np.bool_]) -> npt.NDArray[np.str_]:
    """The segment of every customer, by the table in the module docstring."""
    rules = [
        (is_new, Segment.NEW),
        ((r >= 4) & (f >= 4), Segment.CHAMPIONS),
        ((r >= 3) & (f >= 3), Segment.LOYAL),
        ((r >= 4) & (f == 2), Segment.POTENTIAL_LOYALIST),
        ((r >= 4) & (f == 1), Segment.PROMISING),
        (r == 3, Segment.NEEDS_ATTENTION),
        ((r == 1) & (f >= 4) & (m >= 4), Segment.CANT_LOSE),
        ((r <= 2) & (f >= 3), Segment.AT_RISK),
        (r == 2, Segment.HIBERNATING),
    ]
    return np.select([rule for rule, _ in rules], [str(name) for _, name in rules], default=str(Segment.LAPSED))


def at_risk_flags(
    segment: npt.NDArray[np.str_], frequency: IntArray, p_alive: FloatArray, threshold: float
) -> npt.NDArray[np.bool_]:
    """The checkout flag (see the module docstring). `p_alive` may hold NaN (no model): then only
    the segments decide."""
    by_segment = np.isin(segment, [str(Segment.AT_RISK), str(Segment.CANT_LOSE)])
    with np.errstate(invalid="ignore"):
        fading = (frequency >= 1) & (p_alive < threshold)
    return by_segment | (fading & (segment != str(Segment.LAPSED)))


# Share of customers (by predicted value, best first) in each band; the rest are LOW.
VALUE_BANDS: tuple[tuple[ValueBand, float], ...] = (
    (ValueBand.TOP, 0.05),
    (ValueBand.HIGH, 0.20),
    (ValueBand.MEDIUM, 0.50),
)


def value_bands(clv: FloatArray) -> npt.NDArray[np.str_]:
    """TOP for the best 5% of predicted 12-month value, HIGH for the next 15%, MEDIUM for the next
    30%, LOW for the rest; '' where there is no prediction (NaN). Ties share the better band."""
    result = np.full(clv.shape, "", dtype=object)
    known = ~np.isnan(clv)
    if not known.any():
        return result.astype(str)
    values = clv[known]
    # Share of customers with a strictly higher value: 0 for the best.
    order = np.sort(values)
    better_share = (len(values) - np.searchsorted(order, values, side="right")) / len(values)
    bands = np.full(values.shape, str(ValueBand.LOW), dtype=object)
    for band, upto in reversed(VALUE_BANDS):
        bands[better_share < upto] = str(band)
    result[known] = bands
    return result.astype(str)
