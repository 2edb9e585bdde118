"""Writes of the insights app: the nightly run, survey answers, stated share of wallet, anomaly
acknowledgements and the audit of segment exports.

The nightly run (`insight_run_nightly`) is one transaction: customers' insights, the merchandise
snapshots and the anomalies of a run appear together or not at all. Its heavy lifting is SQL
(insights.sql): Python receives one row per customer and fits two models on them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from customers.models import Customer, CustomerStatus
from inventory.models import LocationKind
from omni.errors import ConflictError, ForbiddenError, NotFoundError
from orders.models import Order, parse_order_number
from orders.models import Status as OrderStatus

from . import clv, conf, rfm, selectors, sql
from .errors import InsightRunInProgressError, InvalidSummaryError, ModelFitError
from .models import (
    Anomaly,
    AnomalyKind,
    CustomerInsight,
    InsightRun,
    RunStatus,
    Segment,
    SegmentExport,
    SizeDemand,
    StockPerformance,
    SurveyResponse,
    WalletShare,
)

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:insights-nightly"
# A run still "running" after this long died with its worker: the next run marks it failed.
STALE_RUN = timedelta(hours=2)
SALES_WEEKS = 9  # the last week and the eight before it
SHRINK_WEEKS = 13  # the last week and the twelve before it
VALUABLE_SEGMENTS = (Segment.CHAMPIONS, Segment.LOYAL, Segment.POTENTIAL_LOYALIST)


def _actor_label(actor: Any) -> str:
    if actor is None:
        return SYSTEM_ACTOR
    if isinstance(actor, str):
        return actor[:100]
    return str(getattr(actor, "get_username", lambda: actor)())[:100]


def _actor_user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def cutoff_for(moment: datetime) -> datetime:
    """Midnight UTC of `moment`'s UTC day: a run reads complete days only."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


# --- the nightly run -------------------------------------------------------------------------------


def insight_run_nightly(*, as_of: datetime | None = None, triggered_by: str = SYSTEM_ACTOR) -> InsightRun:
    """Refresh every customer's insight, the size curves, sell-through and anomalies.

    Reads data before midnight UTC of `as_of` (default now). Idempotent: a second run the same day
    recomputes the same figures (anomalies are unique per day). Raises InsightRunInProgressError
    while another run holds the lock; on any other error the run is recorded as failed, nothing
    else is changed, and the error is re-raised.
    """
    cutoff = cutoff_for(as_of or timezone.now())
    run = _run_start(cutoff=cutoff, triggered_by=triggered_by)
    timings: dict[str, float] = {}
    try:
        with transaction.atomic():
            if sql.is_postgres():
                # The aggregations sort a few hundred thousand rows; the default 4 MB work_mem spills
                # them to disk. This transaction only (SET LOCAL).
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('work_mem', %s, true)", [str(conf.get("WORK_MEM"))])
            with _timed(timings, "customers"):
                _refresh_customers(run, timings)
            with _timed(timings, "size_curves"):
                _refresh_size_demand(run)
            with _timed(timings, "sell_through"):
                _refresh_stock_performance(run)
            with _timed(timings, "anomalies"):
                run.anomalies_found = _detect_anomalies(run)
            run.status = RunStatus.DONE
            run.finished_at = timezone.now()
            run.timings = timings
            run.save()
    except Exception as exc:
        InsightRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        logger.exception("insight run %s failed", run.pk)
        raise
    logger.info("insight run %s done: %s customers, %s", run.pk, run.customers_scored, timings)
    return run


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - started, 3)


def _run_start(*, cutoff: datetime, triggered_by: str) -> InsightRun:
    now = timezone.now()
    InsightRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=now - STALE_RUN).update(
        status=RunStatus.FAILED, finished_at=now, error="Abandoned: still running after 2 hours."
    )
    try:
        with transaction.atomic():
            return InsightRun.objects.create(as_of=cutoff, started_at=now, triggered_by=triggered_by[:100])
    except IntegrityError:
        raise InsightRunInProgressError("insights_run_in_progress", "An insight run is already in progress.") from None


# --- customers -------------------------------------------------------------------------------------


@dataclass
class CustomerScores:
    """Everything computed for the customers of one run, column by column."""

    summaries: selectors.CustomerSummaries
    recency: npt.NDArray[np.int64]
    age: npt.NDArray[np.int64]
    days_since_last: npt.NDArray[np.int64]
    repeat_mean: npt.NDArray[np.float64]
    r: npt.NDArray[np.int64]
    f: npt.NDArray[np.int64]
    m: npt.NDArray[np.int64]
    segment: npt.NDArray[np.str_]
    p_alive: npt.NDArray[np.float64]
    expected_90d: npt.NDArray[np.float64]
    expected_spend: npt.NDArray[np.float64]
    clv_12m: npt.NDArray[np.float64]
    value_band: npt.NDArray[np.str_]
    at_risk: npt.NDArray[np.bool_]


def customer_scores(summaries: selectors.CustomerSummaries, *, cutoff: datetime, run: InsightRun) -> CustomerScores:
    """RFM, segments and model predictions for every summarised customer (vectorised).

    Fits BG/NBD (times in days) and Gamma-Gamma on all of them; when a model cannot be fitted
    (too few customers or repeat buyers) its predictions are NaN and `run.model_note` says why.
    """
    n = len(summaries)
    cutoff_day = selectors.epoch_day(cutoff)
    frequency = summaries.frequency
    recency = summaries.last_day - summaries.first_day
    age = cutoff_day - summaries.first_day
    days_since_last = cutoff_day - summaries.last_day
    with np.errstate(invalid="ignore", divide="ignore"):
        repeat_mean = np.where(
            frequency > 0, (summaries.total_spend - summaries.first_spend) / np.maximum(frequency, 1), 0.0
        )
    r = rfm.quintile_score(summaries.r_rank)
    m = rfm.quintile_score(summaries.m_rank)
    f = rfm.frequency_score(frequency + 1, conf.get("FREQUENCY_BANDS"))
    is_new = (frequency == 0) & (age <= int(conf.get("NEW_CUSTOMER_DAYS")))
    segment = rfm.segments(r, f, m, is_new)

    nan = np.full(n, np.nan)
    p_alive, expected_90d, expected_spend, value = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    notes: list[str] = []
    bgnbd: clv.BgNbdParams | None = None
    try:
        bgnbd = clv.bgnbd_fit(frequency, recency, age)
        p_alive = clv.bgnbd_probability_alive(bgnbd, frequency, recency, age)
        expected_90d = clv.bgnbd_conditional_expected_purchases(
            bgnbd, float(conf.get("PREDICTION_DAYS")), frequency, recency, age
        )
        run.bgnbd = {
            "r": bgnbd.r,
            "alpha_days": bgnbd.alpha,
            "a": bgnbd.a,
            "b": bgnbd.b,
            "log_likelihood": bgnbd.log_likelihood,
            "n": bgnbd.n_customers,
        }
    except (ModelFitError, InvalidSummaryError) as error:
        notes.append(f"BG/NBD: {error.message}")
    if bgnbd is not None:
        repeat = frequency > 0
        try:
            spend_model = clv.gamma_gamma_fit(frequency, repeat_mean)
            expected_spend = clv.gamma_gamma_conditional_expected_spend(spend_model, frequency, repeat_mean)
            correlation = None
            if repeat.sum() > 2 and np.std(frequency[repeat]) > 0 and np.std(repeat_mean[repeat]) > 0:
                correlation = float(np.corrcoef(frequency[repeat], repeat_mean[repeat])[0, 1])
            run.gamma_gamma = {
                "p": spend_model.p,
                "q": spend_model.q,
                "v": spend_model.v,
                "log_likelihood": spend_model.log_likelihood,
                "n": spend_model.n_customers,
                # Gamma-Gamma assumes spend per visit does not depend on how often one buys.
                "frequency_spend_correlation": correlation,
            }
        except (ModelFitError, InvalidSummaryError) as error:
            # Without a spend model a repeat customer is worth their own mean spend per visit, and a
            # one-time buyer the mean of the repeat customers' (or of the first visits', if none).
            fallback = float(repeat_mean[repeat].mean()) if repeat.any() else float(summaries.first_spend.mean())
            expected_spend = np.where(repeat, repeat_mean, fallback)
            notes.append(f"Gamma-Gamma: {error.message} CLV uses each customer's own mean spend.")
        value = expected_spend * clv.discounted_purchases(
            bgnbd,
            frequency,
            recency,
            age,
            periods_per_month=clv.DAYS_PER_MONTH,
            months=int(conf.get("CLV_MONTHS")),
            monthly_discount_rate=float(conf.get("MONTHLY_DISCOUNT_RATE")),
        )
    run.model_note = " ".join(notes)[:255]
    at_risk = rfm.at_risk_flags(segment, frequency, p_alive, float(conf.get("AT_RISK_P_ALIVE")))
    return CustomerScores(
        summaries=summaries,
        recency=recency,
        age=age,
        days_since_last=days_since_last,
        repeat_mean=repeat_mean,
        r=r,
        f=f,
        m=m,
        segment=segment,
        p_alive=p_alive,
        expected_90d=expected_90d,
        expected_spend=expected_spend,
        clv_12m=value,
        value_band=rfm.value_bands(value),
        at_risk=at_risk,
    )


INSIGHT_COLUMNS = (
    "customer_id",
    "run_id",
    "frequency",
    "recency_days",
    "age_days",
    "days_since_last",
    "total_spend",
    "repeat_mean_spend",
    "first_purchase_on",
    "last_purchase_on",
    "last_location_id",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "previous_segment",
    "segment_since",
    "p_alive",
    "expected_purchases_90d",
    "expected_spend",
    "clv_12m",
    "value_band",
    "at_risk",
    "refreshed_at",
)
# Columns the upsert takes from the new row; the segment history columns are computed from both.
_PLAIN_UPDATE = [c for c in INSIGHT_COLUMNS if c not in {"customer_id", "previous_segment", "segment_since"}]


def _money(values: npt.NDArray[np.float64]) -> list[str | None]:
    return [None if math.isnan(v) else f"{v:.2f}" for v in values.tolist()]


def _floats(values: npt.NDArray[np.float64]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def _dates(days: npt.NDArray[np.int64]) -> list[date]:
    return list((np.datetime64("1970-01-01", "D") + days.astype("timedelta64[D]")).tolist())


def _insight_rows(scores: CustomerScores, *, run: InsightRun, refreshed_at: datetime) -> Iterator[tuple[Any, ...]]:
    s = scores.summaries
    n = len(s)
    today = run.as_of.date()
    return zip(
        s.customer_id.tolist(),
        [run.pk] * n,
        s.frequency.tolist(),
        scores.recency.tolist(),
        scores.age.tolist(),
        scores.days_since_last.tolist(),
        [f"{v:.2f}" for v in s.total_spend.tolist()],
        [f"{v:.2f}" for v in scores.repeat_mean.tolist()],
        _dates(s.first_day),
        _dates(s.last_day),
        s.last_location_id,
        scores.r.tolist(),
        scores.f.tolist(),
        scores.m.tolist(),
        scores.segment.tolist(),
        [""] * n,
        [today] * n,
        _floats(np.clip(scores.p_alive, 0.0, 1.0)),
        _floats(scores.expected_90d),
        _money(scores.expected_spend),
        _money(scores.clv_12m),
        scores.value_band.tolist(),
        scores.at_risk.tolist(),
        [refreshed_at] * n,
        strict=True,
    )


def _upsert_sql(source: str) -> str:
    target = sql.table("insights.CustomerInsight")
    columns = ", ".join(INSIGHT_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _PLAIN_UPDATE)
    # On the right of SET, the table name is the row as it was before this statement.
    return f"""
INSERT INTO {target} ({columns}) {source}
ON CONFLICT (customer_id) DO UPDATE SET {updates},
    previous_segment = CASE WHEN {target}.segment <> excluded.segment THEN {target}.segment
                            ELSE {target}.previous_segment END,
    segment_since = CASE WHEN {target}.segment <> excluded.segment THEN excluded.segment_since
                         ELSE {target}.segment_since END
"""


def _write_insights(rows: Iterator[tuple[Any, ...]], timings: dict[str, float]) -> None:
    """Upsert every row: COPY into a temporary table and one INSERT ... ON CONFLICT on PostgreSQL,
    executemany of the same upsert elsewhere."""
    with connection.cursor() as cursor:
        if sql.is_postgres():
            target = sql.table("insights.CustomerInsight")
            with _timed(timings, "customers_copy"):
                cursor.execute("DROP TABLE IF EXISTS insights_stage")
                cursor.execute(f"CREATE TEMPORARY TABLE insights_stage (LIKE {target}) ON COMMIT DROP")
                with cursor.cursor.copy(f"COPY insights_stage ({', '.join(INSIGHT_COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            with _timed(timings, "customers_upsert"):
                cursor.execute(_upsert_sql(f"SELECT {', '.join(INSIGHT_COLUMNS)} FROM insights_stage"))  # noqa: S608
                cursor.execute("DROP TABLE insights_stage")
        else:
            placeholders = ", ".join(["%s"] * len(INSIGHT_COLUMNS))
            cursor.executemany(_upsert_sql(f"VALUES ({placeholders})"), list(rows))


def _refresh_customers(run: InsightRun, timings: dict[str, float]) -> None:
    with _timed(timings, "customers_sql"):
        summaries = selectors.customer_summaries(cutoff=run.as_of)
    if len(summaries):
        with _timed(timings, "customers_models"):
            scores = customer_scores(summaries, cutoff=run.as_of, run=run)
        with _timed(timings, "customers_write"):
            _write_insights(_insight_rows(scores, run=run, refreshed_at=timezone.now()), timings)
        names, counts = np.unique(scores.segment, return_counts=True)
        run.segment_counts = {str(name): int(count) for name, count in zip(names, counts, strict=True)}
    else:
        run.segment_counts = {}
        run.model_note = "No sales to customers yet."
    # Customers who no longer qualify (merged away, erased, all purchases refunded) lose their row.
    with _timed(timings, "customers_prune"):
        CustomerInsight.objects.exclude(run=run).delete()
    run.customers_scored = len(summaries)


# --- merchandise -----------------------------------------------------------------------------------


def _refresh_size_demand(run: InsightRun) -> None:
    weeks = int(conf.get("SIZE_CURVE_WEEKS"))
    params: dict[str, Any] = {
        "run": run.pk,
        "since": run.as_of - timedelta(weeks=weeks),
        "cutoff": run.as_of,
        "cancelled": OrderStatus.CANCELLED,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.size_demand_insert_sql(), params)
    SizeDemand.objects.exclude(run=run).delete()


def _refresh_stock_performance(run: InsightRun) -> None:
    cutoff_day = selectors.epoch_day(run.as_of)
    cover_weeks = int(conf.get("COVER_WEEKS"))
    params: dict[str, Any] = {
        "run": run.pk,
        "since": run.as_of - timedelta(weeks=int(conf.get("SELL_THROUGH_WEEKS"))),
        "recent_day": cutoff_day - 7 * cover_weeks,
        "cutoff": run.as_of,
        "cutoff_day": cutoff_day,
        "cancelled": OrderStatus.CANCELLED,
        "store": LocationKind.STORE,
        "cover_weeks": cover_weeks,
        "late_share": float(conf.get("LATE_SEASON_SHARE")),
        "min_weeks_on_sale": int(conf.get("MARKDOWN_MIN_WEEKS_ON_SALE")),
        "max_sell_through": float(conf.get("MARKDOWN_MAX_SELL_THROUGH")),
        "min_cover": float(conf.get("MARKDOWN_MIN_WEEKS_OF_COVER")),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.stock_performance_insert_sql(), params)
    StockPerformance.objects.exclude(run=run).delete()


# --- anomalies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    kind: str
    location_id: int | None
    subject: str
    observed: float
    expected: float
    message: str


def sales_drop_findings(series: dict[tuple[int, str], list[int]], *, ratio: float, min_units: int) -> list[Finding]:
    """A (store, category) whose last week sold under `ratio` x its average of the eight weeks
    before, when that average is at least `min_units` and the fall is beyond Poisson noise
    (more than 3 standard deviations: last < mean - 3 sqrt(mean))."""
    findings = []
    for (location_id, category), weeks in sorted(series.items()):
        last, before = weeks[0], weeks[1:]
        usual = sum(before) / len(before)
        if usual >= min_units and last < ratio * usual and last < usual - 3 * math.sqrt(usual):
            findings.append(
                Finding(
                    AnomalyKind.SALES_DROP,
                    location_id,
                    category[:60],
                    float(last),
                    round(usual, 1),
                    f"{category}: {last} units sold in the last 7 days against {usual:.0f} a week before.",
                )
            )
    return findings


def shrinkage_findings(series: dict[int, list[tuple[int, float]]], *, min_units: int, ratio: float) -> list[Finding]:
    """A location whose stock counts and shrinkage adjustments lost at least `min_units` units in
    the last week and `ratio` x its usual weekly loss (the mean of the 12 weeks before; 1 at least)."""
    findings = []
    for location_id, weeks in sorted(series.items()):
        (units, value), before = weeks[0], weeks[1:]
        usual = max(1.0, sum(max(0, u) for u, _ in before) / len(before))
        if units >= min_units and units >= ratio * usual:
            findings.append(
                Finding(
                    AnomalyKind.SHRINKAGE,
                    location_id,
                    "stock counts",
                    float(units),
                    round(usual, 1),
                    f"Counts found {units} units missing (retail value {value:,.2f}) in the last 7 days, "
                    f"against about {usual:.0f} in a usual week.",
                )
            )
    return findings


def segment_churn_findings(
    now: dict[str, int], week_ago: dict[str, int], *, drop_share: float, min_members: int
) -> list[Finding]:
    """A valuable segment (champions, loyal, potential loyalists) that lost at least `drop_share`
    of its members since the run a week earlier (when it had at least `min_members`)."""
    findings = []
    for segment in VALUABLE_SEGMENTS:
        before, after = week_ago.get(segment.value, 0), now.get(segment.value, 0)
        if before >= min_members and after <= (1 - drop_share) * before:
            findings.append(
                Finding(
                    AnomalyKind.SEGMENT_CHURN,
                    None,
                    segment.value,
                    float(after),
                    float(before),
                    f"{segment.label}: {after} customers now against {before} a week ago "
                    f"({(before - after) / before:.0%} fewer).",
                )
            )
    return findings


def _detect_anomalies(run: InsightRun) -> int:
    findings: list[Finding] = []
    findings += sales_drop_findings(
        selectors.weekly_category_units(cutoff=run.as_of, weeks=SALES_WEEKS),
        ratio=float(conf.get("SALES_DROP_RATIO")),
        min_units=int(conf.get("SALES_DROP_MIN_UNITS")),
    )
    findings += shrinkage_findings(
        selectors.weekly_shrinkage(cutoff=run.as_of, weeks=SHRINK_WEEKS),
        min_units=int(conf.get("SHRINK_MIN_UNITS")),
        ratio=float(conf.get("SHRINK_RATIO")),
    )
    previous = selectors.insight_run_before(cutoff=run.as_of - timedelta(days=7))
    if previous is not None and previous.pk != run.pk:
        findings += segment_churn_findings(
            run.segment_counts,
            previous.segment_counts,
            drop_share=float(conf.get("CHURN_DROP_SHARE")),
            min_members=int(conf.get("CHURN_MIN_MEMBERS")),
        )
    detected_on = run.as_of.date()
    created = Anomaly.objects.bulk_create(
        [
            Anomaly(
                run=run,
                kind=f.kind,
                location_id=f.location_id,
                subject=f.subject,
                detected_on=detected_on,
                observed=f.observed,
                expected=f.expected,
                message=f.message[:255],
            )
            for f in findings
        ],
        ignore_conflicts=True,
    )
    return len(created)


# --- after-purchase survey, share of wallet ---------------------------------------------------------


def _score(value: Any, *, name: str, upper: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidSummaryError("insights_invalid_score", f"{name} is a whole number from 0 to {upper}.") from None
    if not 0 <= number <= upper:
        raise InvalidSummaryError("insights_invalid_score", f"{name} is a whole number from 0 to {upper}.")
    return number


def survey_order_get(*, order_ref: str) -> Order:
    """The order a survey is about, by its number (SO-000123 or 123). Raises NotFoundError."""
    pk = parse_order_number(order_ref)
    order = Order.objects.filter(pk=pk).first() if pk else None
    if order is None:
        raise NotFoundError("insights_order_not_found", "No order with that number.", {"order_ref": order_ref})
    return order


@transaction.atomic
def survey_record(
    *,
    order_ref: str,
    satisfaction: Any,
    recommend: Any,
    comment: str = "",
    actor: Any,
    location_id: int | None,
) -> SurveyResponse:
    """Record the after-purchase survey of an order (one per order).

    The customer is the order's (followed to the surviving record after a merge). Raises
    InvalidSummaryError for scores outside 0-10, NotFoundError for an unknown order and
    ConflictError when the order was already rated. Callers check that the actor may act for
    the order's location.
    """
    satisfaction_score = _score(satisfaction, name="Satisfaction", upper=10)
    recommend_score = _score(recommend, name="Likelihood to recommend", upper=10)
    order = survey_order_get(order_ref=order_ref)
    customer_id = None
    if order.customer_id is not None:
        customer_id = (
            Customer.objects.filter(pk=order.customer_id).values_list("merged_into_id", flat=True).first()
            or order.customer_id
        )
    try:
        with transaction.atomic():
            return SurveyResponse.objects.create(
                order_ref=order.number,
                customer_id=customer_id,
                location_id=location_id or order.location_id,
                satisfaction=satisfaction_score,
                recommend=recommend_score,
                comment=(comment or "").strip()[:500],
                captured_by=_actor_user(actor),
                captured_by_label=_actor_label(actor),
                created_at=timezone.now(),
            )
    except IntegrityError:
        raise ConflictError(
            "insights_survey_answered", "This order's survey was already answered.", {"order_ref": order.number}
        ) from None


@transaction.atomic
def wallet_share_record(
    *, customer_id: int, share_percent: Any, category: str = "", actor: Any, location_id: int | None
) -> WalletShare:
    """Record the share of their spending a customer says they spend with us (0-100%).

    Raises InvalidSummaryError outside 0-100, NotFoundError for an unknown customer and
    ConflictError for a merged or erased one.
    """
    share = _score(share_percent, name="Share of wallet", upper=100)
    status = Customer.objects.filter(pk=customer_id).values_list("status", flat=True).first()
    if status is None:
        raise NotFoundError("insights_customer_not_found", "No such customer.", {"customer_id": customer_id})
    if status != CustomerStatus.ACTIVE:
        raise ConflictError("insights_customer_inactive", "This customer record is no longer active.")
    return WalletShare.objects.create(
        customer_id=customer_id,
        category=(category or "").strip()[:50],
        share_percent=share,
        location_id=location_id,
        recorded_by=_actor_user(actor),
        recorded_by_label=_actor_label(actor),
        recorded_at=timezone.now(),
    )


# --- anomalies and exports ---------------------------------------------------------------------------


@transaction.atomic
def anomaly_acknowledge(*, anomaly_id: int, actor: Any, allowed: Callable[[Anomaly], bool] | None = None) -> Anomaly:
    """Mark an anomaly as seen. `allowed` (the caller's location check) can refuse with ForbiddenError
    by returning False. Acknowledging twice keeps the first acknowledgement."""
    anomaly = Anomaly.objects.select_for_update(of=("self",)).filter(pk=anomaly_id).order_by("pk").first()
    if anomaly is None:
        raise NotFoundError("insights_anomaly_not_found", "No such anomaly.", {"anomaly_id": anomaly_id})
    if allowed is not None and not allowed(anomaly):
        raise ForbiddenError("forbidden_location", "You cannot act for that location.")
    if anomaly.acknowledged_at is None:
        anomaly.acknowledged_at = timezone.now()
        anomaly.acknowledged_by = _actor_user(actor)
        anomaly.save(update_fields=["acknowledged_at", "acknowledged_by"])
    return anomaly


def segment_export_log(
    *, channel: str, filters: dict[str, Any], row_count: int, actor: Any, location_id: int | None
) -> SegmentExport:
    """Leave a trace of personal data leaving Omni for a campaign."""
    return SegmentExport.objects.create(
        channel=channel,
        filters=filters,
        row_count=row_count,
        exported_by=_actor_user(actor),
        exported_by_label=_actor_label(actor),
        location_id=location_id,
    )
