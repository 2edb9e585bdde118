"""Insights: derived, rebuildable data about customers and merchandise, plus what customers tell us.

Two kinds of rows live here:
- derived (CustomerInsight, SizeDemand, StockPerformance, Anomaly): written only by the nightly run
  (insights.services.insight_run_nightly) from the orders, customers and inventory tables, which
  stay the source of truth. Each run records what it did in an InsightRun.
- stated (SurveyResponse, WalletShare): a customer's own answers, captured by staff, append-only.

Every write goes through insights.services.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from inventory.models import Location, Product


class Segment(models.TextChoices):
    """Named RFM segments (see insights.rfm for the rules)."""

    CHAMPIONS = "champions", "Champions"
    LOYAL = "loyal", "Loyal"
    POTENTIAL_LOYALIST = "potential_loyalist", "Potential loyalists"
    NEW = "new", "New"
    PROMISING = "promising", "Promising"
    NEEDS_ATTENTION = "needs_attention", "Need attention"
    AT_RISK = "at_risk", "At risk"
    CANT_LOSE = "cant_lose", "Can't lose them"
    HIBERNATING = "hibernating", "Hibernating"
    LAPSED = "lapsed", "Lapsed"


class ValueBand(models.TextChoices):
    """Where the customer's predicted 12-month value ranks among all customers."""

    TOP = "top", "Top 5%"
    HIGH = "high", "Next 15%"
    MEDIUM = "medium", "Next 30%"
    LOW = "low", "Other 50%"
    UNKNOWN = "", "Not predicted"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class InsightRun(models.Model):
    """One nightly (or manual) refresh: when, over what, the fitted models and how long each step took."""

    as_of = models.DateTimeField(help_text="Data before this instant were used.")
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    triggered_by = models.CharField(max_length=100, default="system:insights-nightly")
    customers_scored = models.PositiveIntegerField(default=0)
    bgnbd = models.JSONField(default=dict, blank=True, help_text="r, alpha (days), a, b, log-likelihood, n.")
    gamma_gamma = models.JSONField(default=dict, blank=True, help_text="p, q, v, log-likelihood, n.")
    model_note = models.CharField(max_length=255, blank=True, help_text="Why predictions are missing, if they are.")
    segment_counts = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per step.")
    anomalies_found = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # One run at a time: a second start fails on this index instead of racing the first.
            models.UniqueConstraint(fields=["status"], condition=Q(status="running"), name="insightrun_one_running"),
        ]

    def __str__(self) -> str:
        return f"Insight run #{self.pk} ({self.status})"

    @property
    def last_day(self) -> date:
        """The last whole day (UTC) of sales the run read: `as_of` is the midnight after it."""
        return (self.as_of.astimezone(UTC) - timedelta(days=1)).date()


class CustomerInsight(models.Model):
    """What the sales history says about one customer, as of the last run.

    Times are in days. `frequency` is the number of repeat purchase days (purchase days - 1),
    `recency_days` the days from the first to the last purchase, `age_days` from the first
    purchase to the run, as in BG/NBD. Predictions are empty when the models could not be fitted.
    """

    customer = models.OneToOneField(
        "customers.Customer", primary_key=True, on_delete=models.CASCADE, related_name="insight"
    )
    # No index of their own: every row belongs to the latest run, and the (last_location, clv)
    # index serves location filters. Each index costs time in the nightly rewrite of every row.
    run = models.ForeignKey(InsightRun, on_delete=models.PROTECT, related_name="+", db_index=False)
    frequency = models.PositiveIntegerField()
    recency_days = models.PositiveIntegerField()
    age_days = models.PositiveIntegerField()
    days_since_last = models.PositiveIntegerField()
    total_spend = models.DecimalField(max_digits=14, decimal_places=2)
    repeat_mean_spend = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    first_purchase_on = models.DateField()
    last_purchase_on = models.DateField()
    last_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    r_score = models.PositiveSmallIntegerField()
    f_score = models.PositiveSmallIntegerField()
    m_score = models.PositiveSmallIntegerField()
    segment = models.CharField(max_length=20, choices=Segment.choices)
    previous_segment = models.CharField(max_length=20, choices=Segment.choices, blank=True)
    segment_since = models.DateField()
    p_alive = models.FloatField(null=True, blank=True)
    expected_purchases_90d = models.FloatField(null=True, blank=True)
    expected_spend = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    clv_12m = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    value_band = models.CharField(max_length=10, choices=ValueBand.choices, blank=True, default="")
    at_risk = models.BooleanField(default=False)
    refreshed_at = models.DateTimeField()

    class Meta:
        ordering = ["-clv_12m", "customer_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(r_score__gte=1, r_score__lte=5)
                & Q(f_score__gte=1, f_score__lte=5)
                & Q(m_score__gte=1, m_score__lte=5),
                name="customerinsight_scores_1_to_5",
            ),
            models.CheckConstraint(condition=Q(recency_days__lte=models.F("age_days")), name="customerinsight_recency"),
            models.CheckConstraint(
                condition=Q(p_alive__isnull=True) | Q(p_alive__gte=0, p_alive__lte=1), name="customerinsight_p_alive"
            ),
        ]
        indexes = [
            models.Index(fields=["segment", "-clv_12m"], name="insight_segment_clv"),
            models.Index(fields=["last_location", "-clv_12m"], name="insight_location_clv"),
            models.Index(fields=["at_risk", "-clv_12m"], name="insight_at_risk_clv"),
        ]

    def __str__(self) -> str:
        return f"Insight of customer #{self.customer_id}: {self.segment}"

    @property
    def purchase_days(self) -> int:
        return self.frequency + 1


class SurveyResponse(models.Model):
    """A customer's answer to the after-purchase survey: satisfaction and likelihood to recommend (0-10).

    One per order. Kept when the customer is erased (scores only; the comment is scrubbed).
    """

    order_ref = models.CharField(max_length=64, unique=True, help_text="The order asked about, e.g. SO-000123.")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="survey_responses"
    )
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    satisfaction = models.PositiveSmallIntegerField(help_text="0 (very unhappy) to 10 (delighted).")
    recommend = models.PositiveSmallIntegerField(help_text="0 (never) to 10 (certainly): the NPS question.")
    comment = models.CharField(max_length=500, blank=True)
    captured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    captured_by_label = models.CharField(max_length=100)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction__gte=0, satisfaction__lte=10) & Q(recommend__gte=0, recommend__lte=10),
                name="surveyresponse_scores_0_to_10",
            ),
        ]
        indexes = [models.Index(fields=["customer", "-created_at"], name="survey_customer_created")]

    def __str__(self) -> str:
        return f"Survey of {self.order_ref}: {self.satisfaction}/{self.recommend}"

    @property
    def nps_group(self) -> str:
        """Promoter (9-10), passive (7-8) or detractor (0-6), as Net Promoter Score counts them."""
        if self.recommend >= 9:
            return "promoter"
        return "passive" if self.recommend >= 7 else "detractor"


class WalletShare(models.Model):
    """The share of their spending in our kind of shop that a customer says goes to us (stated, 0-100%).

    Append-only: the latest row per customer (and category, blank = overall) is the current answer.
    """

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="wallet_shares")
    category = models.CharField(max_length=50, blank=True, help_text="Blank: all their clothing spend.")
    share_percent = models.PositiveSmallIntegerField()
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_by_label = models.CharField(max_length=100)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(share_percent__gte=0, share_percent__lte=100), name="walletshare_percent_0_to_100"
            ),
        ]
        indexes = [models.Index(fields=["customer", "category", "-recorded_at"], name="walletshare_customer")]

    def __str__(self) -> str:
        return f"Customer #{self.customer_id}: {self.share_percent}% ({self.category or 'overall'})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise RuntimeError("Wallet shares are append-only.")
        super().save(*args, **kwargs)


class SegmentExport(models.Model):
    """Who exported which customers for a campaign, and how many (personal data leaving Omni)."""

    channel = models.CharField(max_length=10, help_text="email or sms: only customers consenting to it.")
    filters = models.JSONField(default=dict)
    row_count = models.PositiveIntegerField(default=0)
    exported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    exported_by_label = models.CharField(max_length=100)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Export #{self.pk} ({self.channel}, {self.row_count} rows)"


class Season(models.Model):
    """The selling window of a season code (Product.season), so 'late in the season' has dates."""

    code = models.CharField(max_length=20, unique=True)
    starts_on = models.DateField()
    ends_on = models.DateField()

    class Meta:
        ordering = ["-starts_on"]
        constraints = [models.CheckConstraint(condition=Q(ends_on__gt=models.F("starts_on")), name="season_dates")]

    def __str__(self) -> str:
        return f"{self.code} ({self.starts_on} - {self.ends_on})"


class SizeDemand(models.Model):
    """Units of one size asked for in one category at one location over the run's window.

    `sold_units` are net of cancellations and returns; `lost_units` are endless-aisle requests
    that could not be sourced (lost sales). Demand = sold + lost.
    """

    run = models.ForeignKey(InsightRun, on_delete=models.CASCADE, related_name="size_demand", db_index=False)
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=50)
    size = models.CharField(max_length=20)
    sold_units = models.IntegerField(default=0)
    lost_units = models.IntegerField(default=0)

    class Meta:
        ordering = ["category", "size"]
        constraints = [
            models.UniqueConstraint(fields=["run", "location", "category", "size"], name="sizedemand_one_per_cell"),
        ]
        indexes = [models.Index(fields=["run", "category"], name="sizedemand_run_category")]

    def __str__(self) -> str:
        return f"{self.category} {self.size}@{self.location_id}: {self.sold_units}+{self.lost_units}"

    @property
    def demand(self) -> int:
        return self.sold_units + self.lost_units


class StockPerformance(models.Model):
    """How one product sells at one location: sell-through, weeks of cover, markdown flag."""

    run = models.ForeignKey(InsightRun, on_delete=models.CASCADE, related_name="stock_performance", db_index=False)
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    on_hand = models.IntegerField()
    units_sold = models.IntegerField(help_text="Net units sold in the sell-through window.")
    units_sold_recent = models.IntegerField(help_text="Net units sold in the cover window (weeks).")
    sell_through = models.FloatField(null=True, blank=True, help_text="sold / (sold + on hand), 0-1.")
    weeks_of_cover = models.FloatField(null=True, blank=True, help_text="Empty: no recent sales.")
    weeks_on_sale = models.IntegerField(default=0)
    season_elapsed = models.FloatField(null=True, blank=True, help_text="Share of the dated season gone.")
    markdown_candidate = models.BooleanField(default=False)

    class Meta:
        ordering = ["location", "product"]
        constraints = [
            models.UniqueConstraint(fields=["run", "location", "product"], name="stockperformance_one_per_cell"),
        ]
        indexes = [models.Index(fields=["run", "location", "markdown_candidate"], name="stockperf_run_location")]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.location_id}"


class AnomalyKind(models.TextChoices):
    SALES_DROP = "sales_drop", "Category sales collapsed"
    SEGMENT_CHURN = "segment_churn", "Segment churning"
    SHRINKAGE = "shrinkage", "Stock shrinkage in counts"


class Anomaly(models.Model):
    """An unusual change the nightly run found, for a manager to look at and acknowledge."""

    run = models.ForeignKey(InsightRun, on_delete=models.PROTECT, related_name="anomalies")
    kind = models.CharField(max_length=20, choices=AnomalyKind.choices)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=60, help_text="The category or segment concerned.")
    detected_on = models.DateField()
    observed = models.FloatField()
    expected = models.FloatField()
    message = models.CharField(max_length=255)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-detected_on", "-id"]
        verbose_name_plural = "anomalies"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "location", "subject", "detected_on"],
                condition=Q(location__isnull=False),
                name="anomaly_once_per_day_at_location",
            ),
            models.UniqueConstraint(
                fields=["kind", "subject", "detected_on"],
                condition=Q(location__isnull=True),
                name="anomaly_once_per_day_overall",
            ),
        ]
        indexes = [models.Index(fields=["acknowledged_at", "-detected_on"], name="anomaly_open")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} on {self.detected_on}"
