"""Transfers between locations, the policies that plan them, and the record of each planning run.

A transfer moves stock from an origin to a destination through a fixed set of states; only
transfers.services changes the state (the state machine), and every stock effect goes through
inventory.services, so the ledger explains every level:

    proposed --approve--> approved --pick--> picking --dispatch--> in_transit --receive--> received
        |                    |                  |                                    \\-> discrepancy
        +------reject/cancel-+------cancel------+----------------------------------------> cancelled

Stock follows the states (per line; "order lines" are units an order already committed at the origin):
  approve   origin reserved +q                   (order lines: nothing, they are committed)
  dispatch  origin reserved -q, on_hand -d       (order lines: committed -d, on_hand -d);
            destination incoming +d
  receive   destination incoming -d, on_hand +d  (order lines also committed +d), then any
            shortage/overage as its own on_hand movement (reason transfer_in, code shortage/overage)
  cancel    origin reserved -q when approved     (order lines: nothing)
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q


class TransferStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    PICKING = "picking", "Picking"
    IN_TRANSIT = "in_transit", "In transit"
    RECEIVED = "received", "Received"
    DISCREPANCY = "discrepancy", "Received with discrepancies"
    CANCELLED = "cancelled", "Cancelled"


# Not yet dispatched: still planned stock (counted as pipeline by the planners).
OPEN_STATUSES = (TransferStatus.PROPOSED, TransferStatus.APPROVED, TransferStatus.PICKING)
# Moving or about to move: what the dashboard calls "in flight".
IN_FLIGHT_STATUSES = (TransferStatus.APPROVED, TransferStatus.PICKING, TransferStatus.IN_TRANSIT)
DONE_STATUSES = (TransferStatus.RECEIVED, TransferStatus.DISCREPANCY)


class TransferSource(models.TextChoices):
    MANUAL = "manual", "Manual"
    DEMAND = "demand", "Customer order"
    REPLENISHMENT = "replenishment", "Replenishment"
    REBALANCING = "rebalancing", "Rebalancing"


AUTOMATIC_SOURCES = (TransferSource.DEMAND, TransferSource.REPLENISHMENT, TransferSource.REBALANCING)


class TransferRoute(models.Model):
    """An origin -> destination lane. Its row is the lock that lets only one request at a time
    decide whether to join an open transfer on the lane or create a new one."""

    origin = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["origin", "destination"], name="transferroute_one_per_lane"),
        ]

    def __str__(self) -> str:
        return f"{self.origin_id} -> {self.destination_id}"


class PlanRun(models.Model):
    """One run of the planners: its key (planner + time bucket), inputs and what it proposed.

    The run and every transfer it creates are written in ONE transaction, so a run either exists
    completely or not at all: a retry (a redelivered task after `kill -9`, a second beat tick in the
    same bucket) finds the key and does nothing, and a run killed midway left nothing behind.
    """

    key = models.CharField(max_length=120, unique=True)
    planners = models.CharField(max_length=60, help_text="Comma-separated: replenishment, rebalancing.")
    parameters = models.JSONField(default=dict, help_text="Settings and policies the run used.")
    counts = models.JSONField(default=dict, help_text="Rows considered, candidates, lines, transfers, units.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.key


class Transfer(models.Model):
    origin = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="transfers_out")
    destination = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="transfers_in")
    status = models.CharField(max_length=12, choices=TransferStatus.choices, default=TransferStatus.PROPOSED)
    source = models.CharField(max_length=14, choices=TransferSource.choices)
    plan_run = models.ForeignKey(PlanRun, null=True, blank=True, on_delete=models.PROTECT, related_name="transfers")
    reason = models.CharField(max_length=255, blank=True, help_text="Why the transfer exists, in words.")
    idempotency_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_label = models.CharField(max_length=100, help_text="A username or system:<process>.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Approval: automatic when within the destination's policy, otherwise a manager's.
    needs_approval_reason = models.CharField(max_length=255, blank=True, help_text="Why it waits for a manager.")
    auto_approved = models.BooleanField(default=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by_label = models.CharField(max_length=100, blank=True)
    picking_started_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatched_by_label = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    received_by_label = models.CharField(max_length=100, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Receipt found a shortage or an overage: flagged to a manager until acknowledged.
    has_discrepancy = models.BooleanField(default=False)
    discrepancy_acknowledged_at = models.DateTimeField(null=True, blank=True)
    discrepancy_acknowledged_by_label = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(origin=F("destination")), name="transfer_origin_not_destination"),
        ]
        indexes = [
            models.Index(fields=["origin", "status"], name="transfer_origin_status"),
            models.Index(fields=["destination", "status"], name="transfer_destination_status"),
            models.Index(fields=["status", "created_at"], name="transfer_status_created"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def code(self) -> str:
        return f"TR-{self.pk:06d}" if self.pk else "TR-new"

    @property
    def is_automatic(self) -> bool:
        return self.source in AUTOMATIC_SOURCES

    @property
    def awaits_manager(self) -> bool:
        return self.status == TransferStatus.PROPOSED or (
            self.has_discrepancy and self.discrepancy_acknowledged_at is None
        )


class TransferLine(models.Model):
    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="lines")
    # Not indexed: nothing reads lines by variant across transfers, and the planners write tens of
    # thousands of lines at once (an index in variant order makes each insert a random write).
    variant = models.ForeignKey("inventory.Variant", on_delete=models.PROTECT, related_name="+", db_index=False)
    quantity = models.PositiveIntegerField(help_text="Planned (and, once approved, held) units.")
    quantity_picked = models.PositiveIntegerField(default=0)
    quantity_dispatched = models.PositiveIntegerField(null=True, blank=True)
    quantity_counted = models.PositiveIntegerField(default=0, help_text="Scanned at the destination so far.")
    quantity_received = models.PositiveIntegerField(null=True, blank=True)
    # Units an order already committed at the origin (collect in store elsewhere): no reservation.
    for_order = models.BooleanField(default=False)
    reference_type = models.CharField(max_length=40, blank=True)
    reference_id = models.CharField(max_length=64, blank=True)
    request_key = models.CharField(max_length=200, blank=True, help_text="Idempotency key of the demand request.")
    # Scanned at the destination but not on the transfer (shipped by mistake): an overage line.
    unexpected = models.BooleanField(default=False)
    unit_value = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    why = models.CharField(max_length=255, blank=True, help_text="Why the planner proposed this line.")
    inputs = models.JSONField(default=dict, blank=True, help_text="The figures behind `why`.")

    class Meta:
        ordering = ["transfer_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity_picked__lte=F("quantity")), name="transferline_pick_le_qty"),
            models.CheckConstraint(
                condition=Q(quantity_dispatched__isnull=True) | Q(quantity_dispatched__lte=F("quantity")),
                name="transferline_dispatch_le_qty",
            ),
            models.UniqueConstraint(
                fields=["request_key", "variant"],
                condition=~Q(request_key=""),
                name="transferline_one_per_request_variant",
            ),
            models.UniqueConstraint(
                fields=["transfer", "variant"],
                condition=Q(for_order=False),
                name="transferline_one_stock_line_per_variant",
            ),
        ]
        indexes = [
            models.Index(
                fields=["reference_type", "reference_id"], condition=~Q(reference_id=""), name="transferline_reference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.variant_id}"

    @property
    def expected(self) -> int:
        """What the destination should count: what left the origin (the plan before dispatch)."""
        return self.quantity if self.quantity_dispatched is None else self.quantity_dispatched

    @property
    def variance(self) -> int:
        received = self.quantity_received if self.quantity_received is not None else self.quantity_counted
        return received - self.expected


class TransferEventKind(models.TextChoices):
    CREATED = "created", "Created"
    LINES_ADDED = "lines_added", "Lines added"
    LINES_REMOVED = "lines_removed", "Lines taken off"
    APPROVED = "approved", "Approved"
    APPROVAL_FAILED = "approval_failed", "Automatic approval failed"
    REJECTED = "rejected", "Rejected"
    PICKING = "picking", "Picking started"
    DISPATCHED = "dispatched", "Dispatched"
    RECEIVED = "received", "Received"
    DISCREPANCY = "discrepancy", "Discrepancy found"
    ACKNOWLEDGED = "acknowledged", "Discrepancy acknowledged"
    CANCELLED = "cancelled", "Cancelled"


class TransferEvent(models.Model):
    """The transfer's timeline: who did what, when. Written by every service that changes a transfer."""

    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=TransferEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    message = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} by {self.actor_label}"


class ReplenishmentPolicy(models.Model):
    """How a store is kept in stock: target days of cover, a display minimum, what is auto-approved."""

    location = models.OneToOneField("inventory.Location", on_delete=models.CASCADE, related_name="replenishment_policy")
    source = models.ForeignKey(
        "inventory.Location",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Replenished from here; empty: the first active warehouse.",
    )
    is_active = models.BooleanField(default=True)
    replenish = models.BooleanField(default=True, help_text="Top up from the warehouse.")
    rebalance = models.BooleanField(default=True, help_text="Give and take excess stock with other stores.")
    target_days_of_cover = models.DecimalField(
        max_digits=6, decimal_places=1, default=Decimal("14"), validators=[MinValueValidator(0)]
    )
    min_display_quantity = models.PositiveIntegerField(default=0, help_text="Always keep at least this many.")
    auto_approve_max_units = models.PositiveIntegerField(
        default=500, help_text="Automatic transfers up to this many units are approved without a manager."
    )
    auto_approve_max_value = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("25000"), validators=[MinValueValidator(0)]
    )

    class Meta:
        verbose_name_plural = "replenishment policies"
        constraints = [
            models.CheckConstraint(condition=Q(target_days_of_cover__gte=0), name="policy_target_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Policy for {self.location}"


class PolicyOverride(models.Model):
    """A different target (and/or display minimum) for one category or one variant at a store."""

    policy = models.ForeignKey(ReplenishmentPolicy, on_delete=models.CASCADE, related_name="overrides")
    category = models.CharField(max_length=50, blank=True)
    variant = models.ForeignKey("inventory.Variant", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    target_days_of_cover = models.DecimalField(
        max_digits=6, decimal_places=1, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    min_display_quantity = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(variant__isnull=True) & ~Q(category="")) | (Q(variant__isnull=False) & Q(category="")),
                name="override_category_xor_variant",
            ),
            models.UniqueConstraint(
                fields=["policy", "category"], condition=Q(variant__isnull=True), name="override_one_per_category"
            ),
            models.UniqueConstraint(
                fields=["policy", "variant"], condition=Q(variant__isnull=False), name="override_one_per_variant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy.location_id}: {self.category or self.variant_id}"


class PlannerSettings(models.Model):
    """Global planner settings (one row, edited in the admin)."""

    velocity_window_days = models.PositiveIntegerField(
        default=28, validators=[MinValueValidator(1), MaxValueValidator(365)], help_text="Sales history used."
    )
    excess_cover_days = models.DecimalField(
        max_digits=6,
        decimal_places=1,
        default=Decimal("60"),
        help_text="A store keeps this many days of cover; more is excess that rebalancing may move.",
    )
    min_shipment_units = models.PositiveIntegerField(
        default=10, help_text="Rebalancing ships a pair only when the expected gain is at least this many units."
    )
    min_shipment_value = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), help_text="...and at least this much value."
    )

    class Meta:
        verbose_name = "planner settings"
        verbose_name_plural = "planner settings"

    def __str__(self) -> str:
        return "Planner settings"
