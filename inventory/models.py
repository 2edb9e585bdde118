"""Locations, the catalogue, stock levels and the append-only stock ledger.

Stock levels are a materialised running sum of the ledger: every change to a level is written
together with the movement(s) that explain it, in one transaction, by inventory.services. Check
constraints make a bug fail loudly instead of overselling.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from .barcodes import validate_gtin

logger = logging.getLogger(__name__)


def _zone_named(name: str) -> ZoneInfo | None:
    """The IANA time zone of that name, or None when this machine does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def validate_time_zone(value: str) -> None:
    """An IANA time zone name this machine knows (pages show the location's local time)."""
    if _zone_named(value) is None:
        raise ValidationError(f"“{value}” is not a time zone name, e.g. America/Chicago or Europe/London.")


class LocationKind(models.TextChoices):
    STORE = "store", "Store"
    WAREHOUSE = "warehouse", "Warehouse"


class LocationQuerySet(models.QuerySet["Location"]):
    def active(self) -> LocationQuerySet:
        return self.filter(is_active=True)

    def stores(self) -> LocationQuerySet:
        return self.filter(kind=LocationKind.STORE)


class Location(models.Model):
    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=LocationKind.choices, default=LocationKind.STORE)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, default="US")
    latitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # Capabilities
    sells_in_store = models.BooleanField(default=True)
    ships_to_customers = models.BooleanField(default=False)
    offers_pickup = models.BooleanField(default=False)
    sends_transfers = models.BooleanField(default=True)
    receives_transfers = models.BooleanField(default=True)
    sells_online = models.BooleanField(
        default=False, help_text="Its available stock is offered by the online store (pushed out)."
    )
    is_active = models.BooleanField(default=True)
    tax_rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Sales tax included in prices sold here, e.g. 0.0825 for 8.25%.",
    )

    objects = LocationQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(tax_rate__gte=0) & Q(tax_rate__lte=1), name="location_tax_rate_range"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def zone(self) -> ZoneInfo:
        """The time zone its pages and emails show times in; UTC when the name is unknown here
        (validation refuses such names; this covers a row written around it)."""
        zone = _zone_named(self.time_zone or "UTC")
        if zone is None:
            logger.warning("location %s has an unknown time zone %r; showing UTC", self.pk, self.time_zone)
            return ZoneInfo("UTC")
        return zone


class Product(models.Model):
    style = models.CharField(max_length=40, unique=True, help_text="Style code shared by the variants.")
    name = models.CharField(max_length=200)
    brand = models.CharField(max_length=100, db_index=True)
    category = models.CharField(max_length=50, db_index=True)
    season = models.CharField(max_length=20, blank=True, db_index=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    online_product_id = models.BigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.style})"


class Variant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="variants")
    sku = models.CharField(max_length=64, unique=True)
    barcode = models.CharField(max_length=14, unique=True, null=True, blank=True, validators=[validate_gtin])
    size = models.CharField(max_length=20, db_index=True)
    colour = models.CharField(max_length=40)
    price = models.DecimalField(max_digits=10, decimal_places=2, help_text="Price including tax.")
    currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)
    online_variant_id = models.BigIntegerField(null=True, blank=True, unique=True)
    online_inventory_item_id = models.BigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="variant_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.product.name if self.product_id else ''} {self.colour}/{self.size}".strip()


class StockState(models.TextChoices):
    ON_HAND = "on_hand", "On hand"
    COMMITTED = "committed", "Committed"
    RESERVED = "reserved", "Reserved"
    SAFETY_STOCK = "safety_stock", "Safety stock"
    UNAVAILABLE = "unavailable", "Unavailable"
    INCOMING = "incoming", "Incoming"


STOCK_STATES: tuple[str, ...] = tuple(StockState.values)


class StockLevel(models.Model):
    """Stock of one variant at one location, in every state.

    `available = on_hand - committed - reserved - safety_stock - unavailable` is a generated column,
    so guarded updates (`WHERE available >= n`) and filters read it directly. It can dip below zero
    only when a policy (safety stock) exceeds what is left; what is promised (committed, reserved)
    plus what cannot be sold (unavailable) never exceeds on hand.
    """

    # No single-column indexes: (location, variant) is unique and (variant, location) is indexed.
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock_levels", db_index=False)
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="stock_levels", db_index=False)
    on_hand = models.IntegerField(default=0)
    committed = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    safety_stock = models.IntegerField(default=0)
    unavailable = models.IntegerField(default=0)
    incoming = models.IntegerField(default=0)
    available = models.GeneratedField(
        expression=F("on_hand") - F("committed") - F("reserved") - F("safety_stock") - F("unavailable"),
        output_field=models.IntegerField(),
        db_persist=True,
    )
    needs_count = models.BooleanField(default=False, help_text="Flagged for a count (e.g. found stock sold).")
    last_counted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["location", "variant"], name="stocklevel_one_per_location_variant"),
            models.CheckConstraint(
                condition=Q(on_hand__gte=0)
                & Q(committed__gte=0)
                & Q(reserved__gte=0)
                & Q(safety_stock__gte=0)
                & Q(unavailable__gte=0)
                & Q(incoming__gte=0),
                name="stocklevel_states_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(on_hand__gte=F("committed") + F("reserved") + F("unavailable")),
                name="stocklevel_promised_within_on_hand",
            ),
        ]
        indexes = [models.Index(fields=["variant", "location"], name="stocklevel_variant_location")]

    def __str__(self) -> str:
        return f"{self.variant_id}@{self.location_id}: {self.on_hand} on hand"

    @property
    def free_to_sell(self) -> int:
        """Units a sale of goods in the customer's hand may take before it records found stock:
        on hand less what is promised or set aside (safety stock may be sold)."""
        return self.on_hand - self.committed - self.reserved - self.unavailable


class MovementReason(models.TextChoices):
    RECEIPT = "receipt", "Receipt"
    SALE = "sale", "Sale"
    RETURN = "return", "Return"
    TRANSFER_OUT = "transfer_out", "Transfer out"
    TRANSFER_IN = "transfer_in", "Transfer in"
    ADJUSTMENT = "adjustment", "Adjustment"
    COUNT = "count", "Count"
    FOUND_STOCK = "found_stock", "Found stock"
    DAMAGE = "damage", "Damage"
    DAMAGE_RELEASE = "damage_release", "Released from quality control"
    RESERVATION = "reservation", "Reservation"
    RELEASE = "release", "Release"
    EXPIRY = "expiry", "Reservation expired"
    COMMIT = "commit", "Commit to order"
    FULFIL = "fulfil", "Fulfil (ship or hand over)"
    CANCEL = "cancel", "Cancellation"
    POLICY = "policy", "Safety stock policy"
    INCOMING = "incoming", "Incoming"


class StockMovement(models.Model):
    """One signed change of one state of one stock level. Append-only: never updated or deleted."""

    # Every stock write inserts here, so the ledger carries only the indexes its reads use: the
    # foreign keys are served by movement_location_reason and movement_variant_location, and the
    # keys (looked up exactly, never with LIKE) get plain indexes through Meta.
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="movements", db_index=False)
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="movements", db_index=False)
    state = models.CharField(max_length=20, choices=StockState.choices)
    quantity = models.IntegerField(help_text="Signed change of the state.")
    reason = models.CharField(max_length=20, choices=MovementReason.choices)
    reason_code = models.CharField(max_length=40, blank=True, help_text="Finer reason, e.g. an adjustment code.")
    note = models.CharField(max_length=255, blank=True)
    reference_type = models.CharField(max_length=40, blank=True, help_text="Document kind, e.g. order, transfer.")
    reference_id = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=100, help_text="Who or what: a username or system:<process>.")
    operation_key = models.CharField(max_length=200, help_text="The operation this belongs to.")
    idempotency_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(quantity=0), name="stockmovement_quantity_not_zero"),
            models.UniqueConstraint(fields=["idempotency_key"], name="movement_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["operation_key"], name="movement_operation_key"),
            models.Index(fields=["variant", "location", "-id"], name="movement_variant_location"),
            models.Index(fields=["reference_type", "reference_id"], name="movement_reference"),
            models.Index(fields=["location", "reason", "created_at"], name="movement_location_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.state} {self.quantity:+d} {self.variant_id}@{self.location_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise RuntimeError("Stock movements are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise RuntimeError("Stock movements are append-only.")


class ReservationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"
    COMMITTED = "committed", "Committed"


class Reservation(models.Model):
    """A temporary hold on stock (a cart line, a transfer being picked) that lapses at `expires_at`."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="reservations")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="reservations")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: held until released.")
    reference_type = models.CharField(max_length=40, blank=True)
    reference_id = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_quantity_positive"),
            # A constraint rather than unique=True: no second (LIKE) index to maintain on every hold.
            models.UniqueConstraint(fields=["idempotency_key"], name="reservation_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="reservation_active_expiry"),
            models.Index(fields=["reference_type", "reference_id"], name="reservation_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.variant_id}@{self.location_id} ({self.status})"


class ReconciliationStatus(models.TextChoices):
    RUNNING = "running", "Running"
    CLEAN = "clean", "No drift"
    DRIFT = "drift", "Drift found"
    FAILED = "failed", "Failed"


class ReconciliationRun(models.Model):
    """One check of every stock level against the sum of its ledger (inventory.reconciliation).

    A run reports drift and never fixes it: a level that disagrees with its ledger means a bug or a
    write that bypassed the services, and a person must look before anything is changed.
    """

    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ReconciliationStatus.choices, default=ReconciliationStatus.RUNNING)
    levels_checked = models.PositiveIntegerField(default=0)
    drift_count = models.PositiveIntegerField(default=0, help_text="Level states that disagree with the ledger.")
    triggered_by = models.CharField(max_length=100, default="system:reconciliation")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Reconciliation #{self.pk} ({self.status})"


class ReconciliationDrift(models.Model):
    """One state of one level whose stored value differs from its ledger sum, as found by a run."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="drifts")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=20, choices=StockState.choices)
    level_value = models.IntegerField(null=True, blank=True, help_text="Empty: the level row does not exist.")
    ledger_sum = models.IntegerField()

    class Meta:
        ordering = ["run", "location", "variant", "state"]
        constraints = [
            models.UniqueConstraint(fields=["run", "location", "variant", "state"], name="drift_one_per_run_state"),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id}@{self.location_id} {self.state}: level {self.level_value}, ledger {self.ledger_sum}"

    @property
    def difference(self) -> int:
        return (self.level_value or 0) - self.ledger_sum
