"""Customers' configuration: loyalty rules and suggestion tuning, read from Django settings.

Every value has a default, so nothing needs to be set. To change one, add it to the settings
module (or read it from the environment there):

    OMNI_DEFAULT_PHONE_REGION = "US"        # region for phone numbers typed without +country
    OMNI_LOYALTY_POINTS_PER_UNIT = "1"      # points earned per 1 unit of currency spent (Decimal)
    OMNI_LOYALTY_POINT_VALUE = "0.01"       # currency value of one point redeemed as a tender
    OMNI_LOYALTY_TIER_WINDOW_DAYS = 365     # tiers follow spend over this rolling window
    OMNI_LOYALTY_TIERS = [                  # ascending min_spend; multiplier scales points earned
        {"code": "member", "name": "Member", "min_spend": "0", "multiplier": "1"},
        {"code": "silver", "name": "Silver", "min_spend": "500", "multiplier": "1.25"},
        {"code": "gold", "name": "Gold", "min_spend": "1500", "multiplier": "1.5"},
    ]
    OMNI_COMPLEMENTARY_CATEGORIES = {"tops": ["bottoms"], ...}   # what goes with what
    OMNI_NEW_ARRIVAL_DAYS = 45              # a product is "new" for this many days
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

DEFAULT_TIERS: list[dict[str, Any]] = [
    {"code": "member", "name": "Member", "min_spend": "0", "multiplier": "1"},
    {"code": "silver", "name": "Silver", "min_spend": "500", "multiplier": "1.25"},
    {"code": "gold", "name": "Gold", "min_spend": "1500", "multiplier": "1.5"},
]

DEFAULT_COMPLEMENTS: dict[str, list[str]] = {
    "tops": ["bottoms", "accessories"],
    "bottoms": ["tops", "shoes"],
    "dresses": ["shoes", "accessories"],
    "shoes": ["accessories", "bottoms"],
    "outerwear": ["tops", "accessories"],
    "accessories": ["tops", "dresses"],
}


@dataclass(frozen=True)
class Tier:
    code: str
    name: str
    min_spend: Decimal
    multiplier: Decimal


def points_per_unit() -> Decimal:
    return Decimal(str(getattr(settings, "OMNI_LOYALTY_POINTS_PER_UNIT", "1")))


def point_value() -> Decimal:
    return Decimal(str(getattr(settings, "OMNI_LOYALTY_POINT_VALUE", "0.01")))


def points_value(points: int) -> Decimal:
    """What `points` are worth as a tender, to the cent."""
    return (Decimal(points) * point_value()).quantize(Decimal("0.01"))


def tier_window_days() -> int:
    return int(getattr(settings, "OMNI_LOYALTY_TIER_WINDOW_DAYS", 365))


def tiers() -> list[Tier]:
    """Configured tiers in ascending order of `min_spend`; the first is the entry tier."""
    raw = getattr(settings, "OMNI_LOYALTY_TIERS", DEFAULT_TIERS)
    parsed = [
        Tier(
            code=str(item["code"]),
            name=str(item.get("name", item["code"])),
            min_spend=Decimal(str(item.get("min_spend", "0"))),
            multiplier=Decimal(str(item.get("multiplier", "1"))),
        )
        for item in raw
    ]
    return sorted(parsed, key=lambda tier: tier.min_spend)


def tier_for_spend(spend: Decimal) -> Tier:
    chosen = tiers()[0]
    for tier in tiers():
        if spend >= tier.min_spend:
            chosen = tier
    return chosen


def tier_by_code(code: str) -> Tier:
    for tier in tiers():
        if tier.code == code:
            return tier
    return tiers()[0]


def next_tier(code: str) -> Tier | None:
    ordered = tiers()
    for index, tier in enumerate(ordered):
        if tier.code == code and index + 1 < len(ordered):
            return ordered[index + 1]
    return None


def complementary_categories() -> dict[str, list[str]]:
    return dict(getattr(settings, "OMNI_COMPLEMENTARY_CATEGORIES", DEFAULT_COMPLEMENTS))


def new_arrival_days() -> int:
    return int(getattr(settings, "OMNI_NEW_ARRIVAL_DAYS", 45))
