"""Reads of the insights app: the nightly aggregations (raw SQL, see insights.sql) and the pages' queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import connection
from django.db.models import Avg, Count, Q, QuerySet, Sum

from customers.conf import tier_by_code
from customers.models import Customer, CustomerStatus
from inventory.models import Location, LocationKind, MovementReason
from orders.models import Status as OrderStatus

from . import merch, sql
from .models import (
    Anomaly,
    CustomerInsight,
    InsightRun,
    RunStatus,
    Segment,
    SizeDemand,
    StockPerformance,
    SurveyResponse,
    WalletShare,
)

EPOCH = date(1970, 1, 1)


def epoch_day(moment: datetime | date) -> int:
    """Days since 1970-01-01 of a UTC datetime (or a date), as insights.sql counts them."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return (day - EPOCH).days


# --- the nightly aggregations ----------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerSummaries:
    """Per-customer purchase summaries, one array element per customer (sorted by customer id)."""

    customer_id: npt.NDArray[np.int64]
    frequency: npt.NDArray[np.int64]
    first_day: npt.NDArray[np.int64]
    last_day: npt.NDArray[np.int64]
    total_spend: npt.NDArray[np.float64]
    first_spend: npt.NDArray[np.float64]
    last_location_id: list[int | None]
    r_rank: npt.NDArray[np.float64]
    m_rank: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.customer_id)


def customer_summaries(*, cutoff: datetime) -> CustomerSummaries:
    """Frequency, first/last purchase day, spend and rank of every active customer who bought
    before `cutoff`, in one SQL statement (insights.sql.customer_summary_sql)."""
    params: dict[str, Any] = {"cutoff": cutoff, "cancelled": OrderStatus.CANCELLED, "active": CustomerStatus.ACTIVE}
    with connection.cursor() as cursor:
        cursor.execute(sql.customer_summary_sql(), params)
        rows = cursor.fetchall()
    if not rows:
        empty_int = np.zeros(0, dtype=np.int64)
        empty_float = np.zeros(0, dtype=np.float64)
        return CustomerSummaries(
            empty_int, empty_int, empty_int, empty_int, empty_float, empty_float, [], empty_float, empty_float
        )
    columns = list(zip(*rows, strict=True))
    return CustomerSummaries(
        customer_id=np.asarray(columns[0], dtype=np.int64),
        frequency=np.asarray(columns[1], dtype=np.int64),
        first_day=np.asarray(columns[2], dtype=np.int64),
        last_day=np.asarray(columns[3], dtype=np.int64),
        total_spend=np.asarray(columns[4], dtype=np.float64),
        first_spend=np.asarray(columns[5], dtype=np.float64),
        last_location_id=list(columns[6]),
        r_rank=np.asarray(columns[7], dtype=np.float64),
        m_rank=np.asarray(columns[8], dtype=np.float64),
    )


def weekly_category_units(*, cutoff: datetime, weeks: int) -> dict[tuple[int, str], list[int]]:
    """(store, category) -> net units sold in each of the `weeks` complete weeks before `cutoff`,
    most recent first."""
    cutoff_day = epoch_day(cutoff)
    params: dict[str, Any] = {
        "since": cutoff - timedelta(days=7 * weeks),
        "cutoff": cutoff,
        "cutoff_day": cutoff_day,
        "cancelled": OrderStatus.CANCELLED,
    }
    stores = set(Location.objects.filter(kind=LocationKind.STORE).values_list("pk", flat=True))
    series: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * weeks)
    with connection.cursor() as cursor:
        cursor.execute(sql.weekly_category_units_sql(), params)
        for location_id, category, weeks_back, units in cursor.fetchall():
            if location_id in stores and 0 <= weeks_back < weeks:
                series[(location_id, category)][weeks_back] = int(units or 0)
    return dict(series)


def weekly_shrinkage(*, cutoff: datetime, weeks: int) -> dict[int, list[tuple[int, float]]]:
    """location -> (units, retail value) lost in counts and shrinkage adjustments in each of the
    `weeks` complete weeks before `cutoff`, most recent first."""
    params: dict[str, Any] = {
        "since": cutoff - timedelta(days=7 * weeks),
        "cutoff": cutoff,
        "cutoff_day": epoch_day(cutoff),
        "count": MovementReason.COUNT,
        "adjustment": MovementReason.ADJUSTMENT,
    }
    series: dict[int, list[tuple[int, float]]] = defaultdict(lambda: [(0, 0.0)] * weeks)
    with connection.cursor() as cursor:
        cursor.execute(sql.weekly_shrinkage_sql(), params)
        for location_id, weeks_back, units, value in cursor.fetchall():
            if 0 <= weeks_back < weeks:
                series[location_id][weeks_back] = (int(units or 0), float(value or 0))
    return dict(series)


# --- runs ------------------------------------------------------------------------------------------


def insight_run_latest(*, done: bool = True) -> InsightRun | None:
    runs = InsightRun.objects.all()
    if done:
        runs = runs.filter(status=RunStatus.DONE)
    return runs.order_by("-started_at", "-id").first()


def insight_run_before(*, cutoff: datetime) -> InsightRun | None:
    """The latest finished run whose data stopped at or before `cutoff` (for week-on-week comparisons)."""
    return InsightRun.objects.filter(status=RunStatus.DONE, as_of__lte=cutoff).order_by("-as_of", "-started_at").first()


# --- customers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerInsightCard:
    """Everything the customer-page fragment shows."""

    customer: Customer
    insight: CustomerInsight | None
    loyalty_tier: str
    survey_count: int
    satisfaction_avg: float | None
    recommend_avg: float | None
    latest_survey: SurveyResponse | None
    wallet_share: WalletShare | None

    @property
    def bought_since(self) -> datetime | None:
        """The customer's last purchase when it came after the sales the insight read (the card
        would otherwise call someone who bought today lapsed, beside a header saying today)."""
        last = self.customer.last_purchase_at
        if self.insight is None or last is None or last < self.insight.run.as_of:
            return None
        return last


def customer_insight_card(*, customer_id: int) -> CustomerInsightCard | None:
    """The customer's insight, loyalty tier, survey scores and stated share of wallet (5 queries)."""
    customer = Customer.objects.select_related("loyalty").filter(pk=customer_id).first()
    if customer is None:
        return None
    insight = CustomerInsight.objects.select_related("last_location", "run").filter(customer_id=customer_id).first()
    surveys = SurveyResponse.objects.filter(customer_id=customer_id)
    stats = surveys.aggregate(count=Count("pk"), satisfaction=Avg("satisfaction"), recommend=Avg("recommend"))
    latest = surveys.order_by("-created_at", "-id").first() if stats["count"] else None
    share = WalletShare.objects.filter(customer_id=customer_id, category="").order_by("-recorded_at", "-id").first()
    loyalty = getattr(customer, "loyalty", None)
    return CustomerInsightCard(
        customer=customer,
        insight=insight,
        loyalty_tier=tier_by_code(loyalty.tier).name if loyalty is not None and loyalty.tier else "",
        survey_count=stats["count"],
        satisfaction_avg=stats["satisfaction"],
        recommend_avg=stats["recommend"],
        latest_survey=latest,
        wallet_share=share,
    )


@dataclass(frozen=True)
class InsightFilters:
    """Filters of the manager list and of segment exports. `location_ids` None = every location."""

    segment: str = ""
    value_band: str = ""
    at_risk: bool | None = None
    location_id: int | None = None
    location_ids: frozenset[int] | None = None
    min_clv: float | None = None
    order: str = "-clv_12m"

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "value_band": self.value_band,
            "at_risk": self.at_risk,
            "location_id": self.location_id,
            "min_clv": self.min_clv,
            "order": self.order,
        }


ORDERINGS = {
    "-clv_12m": ("-clv_12m", "customer_id"),
    "-p_alive": ("-p_alive", "customer_id"),
    "p_alive": ("p_alive", "customer_id"),
    "-total_spend": ("-total_spend", "customer_id"),
    "days_since_last": ("days_since_last", "customer_id"),
    "-days_since_last": ("-days_since_last", "customer_id"),
}


def _filtered(filters: InsightFilters) -> QuerySet[CustomerInsight]:
    rows = CustomerInsight.objects.filter(customer__status=CustomerStatus.ACTIVE)
    if filters.segment:
        rows = rows.filter(segment=filters.segment)
    if filters.value_band:
        rows = rows.filter(value_band=filters.value_band)
    if filters.at_risk is not None:
        rows = rows.filter(at_risk=filters.at_risk)
    if filters.location_id is not None:
        rows = rows.filter(last_location_id=filters.location_id)
    elif filters.location_ids is not None:
        rows = rows.filter(last_location_id__in=filters.location_ids)
    if filters.min_clv is not None:
        rows = rows.filter(clv_12m__gte=filters.min_clv)
    return rows


def customer_insight_list(*, filters: InsightFilters, offset: int = 0, limit: int = 50) -> list[CustomerInsight]:
    """One page of insights with their customer and last store (1 query)."""
    ordering = ORDERINGS.get(filters.order, ORDERINGS["-clv_12m"])
    rows = _filtered(filters).select_related("customer", "last_location").order_by(*ordering)
    return list(rows[offset : offset + limit])


def customer_insight_count(*, filters: InsightFilters) -> int:
    return _filtered(filters).count()


def segment_overview(*, filters: InsightFilters) -> list[dict[str, Any]]:
    """Customers, at-risk count and predicted value per segment, for the filters' locations (1 query)."""
    base = InsightFilters(location_id=filters.location_id, location_ids=filters.location_ids)
    totals: dict[str, dict[str, Any]] = {
        row["segment"]: dict(row)
        for row in _filtered(base)
        .values("segment")
        .annotate(customers=Count("pk"), at_risk=Count("pk", filter=Q(at_risk=True)), avg_clv=Avg("clv_12m"))
    }
    return [
        {
            "segment": segment.value,
            "label": segment.label,
            "customers": totals.get(segment.value, {}).get("customers", 0),
            "at_risk": totals.get(segment.value, {}).get("at_risk", 0),
            "avg_clv": totals.get(segment.value, {}).get("avg_clv"),
        }
        for segment in Segment
    ]


EXPORT_COLUMNS = ("customer_id", "name", "email", "phone", "segment", "value_band", "at_risk", "clv_12m", "p_alive")


def segment_export_queryset(*, filters: InsightFilters, channel: str) -> QuerySet[CustomerInsight]:
    """Insights of active customers who consent to `channel` ("email" or "sms") and can be reached
    on it. Consent is read at export time from customers' current flags (withdrawn = left out)."""
    rows = _filtered(filters)
    if channel == "sms":
        rows = rows.filter(customer__sms_consent=True).exclude(customer__phone="")
    else:
        rows = rows.filter(customer__email_consent=True).exclude(customer__email="")
    ordering = ORDERINGS.get(filters.order, ORDERINGS["-clv_12m"])
    return rows.order_by(*ordering)


def segment_export_rows(*, filters: InsightFilters, channel: str) -> Iterator[tuple[Any, ...]]:
    """The export's rows (streamed from the database in chunks, one query)."""
    rows = segment_export_queryset(filters=filters, channel=channel).values_list(
        "customer_id",
        "customer__name",
        "customer__email" if channel != "sms" else "customer__phone",
        "segment",
        "value_band",
        "at_risk",
        "clv_12m",
        "p_alive",
    )
    yield from rows.iterator(chunk_size=2000)


# --- merchandise -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeCurveView:
    category: str
    location_id: int | None
    curve: list[merch.SizeShare]
    total_sold: int
    total_lost: int
    categories: list[str] = field(default_factory=list)


def lost_demand_recorded() -> bool:
    """Whether orders records unsourced endless-aisle requests (see insights.sql.lost_demand_table)."""
    return sql.lost_demand_table() is not None


def size_demand_categories(*, run: InsightRun) -> list[str]:
    return list(SizeDemand.objects.filter(run=run).order_by("category").values_list("category", flat=True).distinct())


def size_curve_for(*, run: InsightRun, category: str, location_id: int | None) -> SizeCurveView:
    """The category's size curve at one location (shrunk toward the chain's) or for the whole chain
    (location None). Two queries at most: the chain's counts, the location's counts."""
    chain: dict[str, tuple[int, int]] = {}
    for size, sold, lost in (
        SizeDemand.objects.filter(run=run, category=category)
        .values("size")
        .annotate(sold=Sum("sold_units"), lost=Sum("lost_units"))
        .values_list("size", "sold", "lost")
    ):
        chain[size] = (int(sold or 0), int(lost or 0))
    if location_id is None:
        curve = merch.size_curve(chain)
        counts = chain
    else:
        counts = {
            size: (sold, lost)
            for size, sold, lost in SizeDemand.objects.filter(
                run=run, category=category, location_id=location_id
            ).values_list("size", "sold_units", "lost_units")
        }
        curve = merch.size_curve(counts, chain_counts=chain)
    return SizeCurveView(
        category=category,
        location_id=location_id,
        curve=curve,
        total_sold=sum(max(0, sold) for sold, _ in counts.values()),
        total_lost=sum(lost for _, lost in counts.values()),
    )


def stock_performance_list(
    *,
    run: InsightRun,
    location_ids: frozenset[int] | None,
    location_id: int | None = None,
    category: str = "",
    markdown_only: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> list[StockPerformance]:
    """Sell-through rows of a run with product and location (1 query), slowest sellers first."""
    rows = StockPerformance.objects.filter(run=run).select_related("product", "location")
    if location_id is not None:
        rows = rows.filter(location_id=location_id)
    elif location_ids is not None:
        rows = rows.filter(location_id__in=location_ids)
    if category:
        rows = rows.filter(product__category=category)
    if markdown_only:
        rows = rows.filter(markdown_candidate=True)
    rows = rows.order_by("-markdown_candidate", "sell_through", "-on_hand", "id")
    return list(rows[offset : offset + limit])


def anomaly_list(
    *, location_ids: frozenset[int] | None, include_acknowledged: bool = False, limit: int = 100
) -> list[Anomaly]:
    """Open anomalies (newest first) at the given locations, plus chain-wide ones (1 query)."""
    rows = Anomaly.objects.select_related("location", "acknowledged_by")
    if location_ids is not None:
        rows = rows.filter(Q(location_id__in=location_ids) | Q(location__isnull=True))
    if not include_acknowledged:
        rows = rows.filter(acknowledged_at__isnull=True)
    return list(rows.order_by("-detected_on", "-id")[:limit])
