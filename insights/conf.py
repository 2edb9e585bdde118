"""Insights' tuning, read from Django settings with defaults (nothing needs to be set).

OMNI_INSIGHTS_MONTHLY_DISCOUNT_RATE = 0.01   # CLV discount per month (1% = 12.7% a year)
OMNI_INSIGHTS_CLV_MONTHS = 12                # CLV horizon
OMNI_INSIGHTS_PREDICTION_DAYS = 90           # "expected purchases in the next N days"
OMNI_INSIGHTS_NEW_CUSTOMER_DAYS = 30         # one purchase within N days: segment "new"
OMNI_INSIGHTS_FREQUENCY_BANDS = [1, 2, 3, 4, 6]  # purchase occasions needed for F score 1..5
OMNI_INSIGHTS_AT_RISK_P_ALIVE = 0.5          # repeat buyers below this P(alive) are at risk
OMNI_INSIGHTS_SIZE_CURVE_WEEKS = 52          # demand window of the size curves
OMNI_INSIGHTS_SELL_THROUGH_WEEKS = 26        # sell-through window (season to date, at most)
OMNI_INSIGHTS_COVER_WEEKS = 4                # weeks of sales behind the weekly rate of cover
OMNI_INSIGHTS_MARKDOWN_MAX_SELL_THROUGH = 0.4
OMNI_INSIGHTS_MARKDOWN_MIN_WEEKS_OF_COVER = 12
OMNI_INSIGHTS_MARKDOWN_MIN_WEEKS_ON_SALE = 8  # "late in the season" when the season has no dates
OMNI_INSIGHTS_LATE_SEASON_SHARE = 0.6        # share of a dated season gone = late in the season
OMNI_INSIGHTS_SALES_DROP_RATIO = 0.5         # a week below half its usual level is a collapse
OMNI_INSIGHTS_SALES_DROP_MIN_UNITS = 20      # ...when the usual level is at least this
OMNI_INSIGHTS_CHURN_DROP_SHARE = 0.15        # a segment losing 15% of its members in a week
OMNI_INSIGHTS_SHRINK_MIN_UNITS = 10          # count losses in a week that deserve a look...
OMNI_INSIGHTS_SHRINK_RATIO = 3.0             # ...when also 3x the store's usual weekly loss
OMNI_INSIGHTS_LOST_DEMAND_MODEL = "orders.LostDemand"  # where orders records unsourced
    # endless-aisle requests (fields location, variant, quantity, occurred_at); absent = none
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "MONTHLY_DISCOUNT_RATE": 0.01,
    "CLV_MONTHS": 12,
    "PREDICTION_DAYS": 90,
    "NEW_CUSTOMER_DAYS": 30,
    "FREQUENCY_BANDS": [1, 2, 3, 4, 6],
    "AT_RISK_P_ALIVE": 0.5,
    "SIZE_CURVE_WEEKS": 52,
    "SELL_THROUGH_WEEKS": 26,
    "COVER_WEEKS": 4,
    "MARKDOWN_MAX_SELL_THROUGH": 0.4,
    "MARKDOWN_MIN_WEEKS_OF_COVER": 12,
    "MARKDOWN_MIN_WEEKS_ON_SALE": 8,
    "LATE_SEASON_SHARE": 0.6,
    "SALES_DROP_RATIO": 0.5,
    "SALES_DROP_MIN_UNITS": 20,
    "CHURN_DROP_SHARE": 0.15,
    "CHURN_MIN_MEMBERS": 20,
    "SHRINK_MIN_UNITS": 10,
    "SHRINK_RATIO": 3.0,
    "LOST_DEMAND_MODEL": "orders.LostDemand",
    "WORK_MEM": "64MB",
}


def get(name: str) -> Any:
    """The setting OMNI_INSIGHTS_<name>, or its default."""
    return getattr(settings, f"OMNI_INSIGHTS_{name}", DEFAULTS[name])
