"""Size curves and buy splits (pure Python; the demand counts come from the database).

A size curve is the share of a category's demand that each size takes. Demand = units sold (net
of returns) + units asked for that could not be sourced (lost sales), so a size that keeps selling
out does not look less popular than it is.

A store with little history gets a noisy curve, so a store's curve is shrunk toward the chain's
curve for the same category: share = (store units + k * chain share) / (store units total + k),
with k = `prior_units` (20 by default: a store's own data outweigh the chain's once it has sold
more than 20 units of the category). With no store data this is the chain curve.

A buy of N units is split with the largest-remainder (Hamilton) method: every size gets the whole
part of N x share, and the units left over go to the largest fractional parts, so the split sums to
exactly N and no size is more than one unit away from its exact share.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The order sizes are shown in. Letter sizes first, then numeric (waist, shoe, dress), then the rest.
LETTER_SIZES = ("XXXS", "XXS", "XS", "S", "M", "L", "XL", "XXL", "XXXL", "3XL", "4XL", "5XL")
_ALIASES = {"2XS": "XXS", "2XL": "XXL", "3XS": "XXXS"}
_NUMBER = re.compile(r"^(\d+(?:[.,]\d+)?)")
DEFAULT_PRIOR_UNITS = 20.0


def size_sort_key(size: str) -> tuple[int, float, str]:
    """XS < S < M < L < XL, then 2 < 4 < 10 < 30/32 (by the leading number), then the rest by name."""
    text = size.strip().upper()
    letter = _ALIASES.get(text, text)
    if letter in LETTER_SIZES:
        return (0, float(LETTER_SIZES.index(letter)), text)
    number = _NUMBER.match(text)
    if number:
        return (1, float(number.group(1).replace(",", ".")), text)
    return (2, 0.0, text)


@dataclass(frozen=True)
class SizeShare:
    size: str
    sold: int
    lost: int
    share: float  # 0..1, the (smoothed) share of demand

    @property
    def demand(self) -> int:
        return self.sold + self.lost


@dataclass(frozen=True)
class BuyLine:
    size: str
    share: float
    units: int


def size_curve(
    counts: Mapping[str, tuple[int, int]],
    *,
    chain_counts: Mapping[str, tuple[int, int]] | None = None,
    prior_units: float = DEFAULT_PRIOR_UNITS,
) -> list[SizeShare]:
    """Shares of demand per size, in size order. `counts` maps size -> (sold, lost).

    With `chain_counts`, the curve is shrunk toward the chain's (see the module docstring) and
    covers every size the chain sells. Negative demand (more returns than sales) counts as 0.
    """
    sizes = set(counts) | set(chain_counts or {})
    demand = {size: max(0, sum(counts.get(size, (0, 0)))) for size in sizes}
    total = sum(demand.values())
    if chain_counts:
        chain_demand = {size: max(0, sum(chain_counts.get(size, (0, 0)))) for size in sizes}
        chain_total = sum(chain_demand.values())
        if chain_total > 0:
            weight = prior_units
            shares = {
                size: (demand[size] + weight * chain_demand[size] / chain_total) / (total + weight) for size in sizes
            }
            return _ordered(counts, shares)
    if total <= 0:
        return _ordered(counts, dict.fromkeys(sizes, 0.0))
    return _ordered(counts, {size: demand[size] / total for size in sizes})


def _ordered(counts: Mapping[str, tuple[int, int]], shares: Mapping[str, float]) -> list[SizeShare]:
    return [
        SizeShare(size=size, sold=counts.get(size, (0, 0))[0], lost=counts.get(size, (0, 0))[1], share=share)
        for size, share in sorted(shares.items(), key=lambda item: size_sort_key(item[0]))
    ]


def buy_split(curve: Iterable[SizeShare], quantity: int) -> list[BuyLine]:
    """Split `quantity` units over the sizes by share (largest remainder). Sums to `quantity`
    exactly when any share is positive; all zeros otherwise. Ties go to the earlier size."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise ValueError("The quantity to buy is a whole number, zero or more.")
    lines = list(curve)
    total_share = sum(line.share for line in lines)
    if total_share <= 0:
        return [BuyLine(line.size, 0.0, 0) for line in lines]
    exact = [quantity * line.share / total_share for line in lines]
    units = [math.floor(value) for value in exact]
    left = quantity - sum(units)
    by_remainder = sorted(range(len(lines)), key=lambda i: (-(exact[i] - units[i]), i))
    for i in by_remainder[:left]:
        units[i] += 1
    return [BuyLine(line.size, line.share / total_share, count) for line, count in zip(lines, units, strict=True)]
