"""The online store (Shopify-style): webhook deliveries in, inventory levels out.

A delivery is stored durably (raw body, headers) before it is acknowledged, then processed by a
Celery task. Effects are idempotent twice over: by webhook id (a unique constraint) and by resource
id + `updated_at` (OnlineResourceVersion), so duplicates and out-of-order retries count once.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received (queued)"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored (topic not handled)"
    STALE = "stale", "Skipped (older than what we have)"
    FAILED = "failed", "Failed (retrying)"
    ERROR = "error", "Error (needs an operator)"
    REJECTED = "rejected", "Rejected (malformed or oversized)"


class WebhookDelivery(models.Model):
    shop_domain = models.CharField(max_length=255)
    webhook_id = models.CharField(max_length=255)
    topic = models.CharField(max_length=100, db_index=True)
    event_id = models.CharField(max_length=255, blank=True)
    api_version = models.CharField(max_length=20, blank=True)
    triggered_at = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict)
    raw_body = models.BinaryField()
    body_size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0, help_text="Repeat deliveries acknowledged and skipped.")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["shop_domain", "webhook_id"], name="webhookdelivery_unique_per_shop"),
        ]
        indexes = [
            models.Index(
                fields=["status", "updated_at"],
                condition=Q(status__in=["received", "processing", "failed"]),
                name="webhookdelivery_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.webhook_id} ({self.status})"


class OnlineResourceVersion(models.Model):
    """The newest `updated_at` applied per online resource: older payloads are skipped."""

    resource_type = models.CharField(max_length=30)
    resource_id = models.BigIntegerField()
    updated_at = models.DateTimeField()
    applied_delivery = models.ForeignKey(WebhookDelivery, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource_type", "resource_id"], name="onlineresourceversion_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.resource_id} @ {self.updated_at.isoformat()}"


class OnlineLocation(models.Model):
    """Maps an online-store location to the Omni location whose stock it sells."""

    online_location_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=100, blank=True)
    location = models.OneToOneField("inventory.Location", on_delete=models.PROTECT, related_name="online_location")
    push_enabled = models.BooleanField(default=True)
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_push_error = models.TextField(blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    drift_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["location__code"]

    def __str__(self) -> str:
        return f"online {self.online_location_id} -> {self.location_id}"


class OnlineInventoryLevel(models.Model):
    """What Omni and the online store each believe about one item at one location."""

    location = models.ForeignKey("inventory.Location", on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey("inventory.Variant", on_delete=models.CASCADE, related_name="+")
    online_available = models.IntegerField(null=True, blank=True, help_text="Last value the store reported.")
    online_updated_at = models.DateTimeField(null=True, blank=True)
    pushed_available = models.IntegerField(null=True, blank=True, help_text="Last value Omni pushed.")
    pushed_at = models.DateTimeField(null=True, blank=True)
    echoes = models.PositiveIntegerField(default=0, help_text="Reports that merely echoed our own push.")
    differs = models.BooleanField(default=False, help_text="The store reported a value Omni did not push.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["location", "variant"], name="onlineinventorylevel_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id}@{self.location_id}: online {self.online_available}, pushed {self.pushed_available}"


class PushStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class InventoryPush(models.Model):
    """One `inventorySetQuantities` call: up to 250 quantities, one idempotency key reused on retries."""

    location = models.ForeignKey("inventory.Location", on_delete=models.CASCADE, related_name="+")
    idempotency_key = models.CharField(max_length=64, unique=True)
    quantities = models.JSONField(default=list, help_text="[{variant_id, quantity, change_from}]")
    status = models.CharField(max_length=10, choices=PushStatus.choices, default=PushStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"push {self.idempotency_key} ({self.status}, {len(self.quantities)} items)"


class SyncCursor(models.Model):
    """How far the pusher has read the stock outbox (omni.LiveEvent ids)."""

    name = models.CharField(max_length=50, unique=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"


class DriftReport(models.Model):
    """A reconciliation of Omni's available stock against the online store's, per location."""

    location = models.ForeignKey("inventory.Location", on_delete=models.CASCADE, related_name="+")
    checked = models.PositiveIntegerField(default=0)
    drifted = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=list, help_text="[{sku, omni, online}] for drifted items (first 500)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"drift {self.location_id}: {self.drifted}/{self.checked}"
