"""Online store writes: storing and processing webhook deliveries, and pushing inventory levels.

Delivery pipeline
-----------------
`delivery_store` inserts the delivery with `ON CONFLICT DO NOTHING` on (shop, webhook id): a repeat
is acknowledged and counted, never processed again. After commit the processing task is queued; if
the broker is unreachable the row stays `received` and the sweeper queues it later, so a stored
delivery is never lost. `delivery_process` locks the delivery, runs the topic's handler in the
same transaction as the status change (exactly one effect), and sorts failures into:
- `rejected`: malformed JSON or oversized; replaying will not help until the sender changes;
- `error`: the payload is well formed but cannot be applied (missing fields, unknown SKU or
  location). An operator fixes the cause (adds the SKU) and replays from the admin;
- transient errors (database or network) propagate so Celery retries with backoff.
Handlers are idempotent by resource id and `updated_at` as well (`_claim_version`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from inventory.models import Location, Variant
from inventory.prepared import fetch_prepared
from inventory.services import SystemActor, VariantData, catalogue_upsert_product
from omni.errors import ApplicationError
from omni.http import contains_nul

from . import queueing
from .models import DeliveryStatus, OnlineInventoryLevel, OnlineLocation, OnlineResourceVersion, WebhookDelivery

logger = logging.getLogger(__name__)
ACTOR = SystemActor("online-store")
MAX_ATTEMPTS = 8
FINAL_STATUSES = {DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED, DeliveryStatus.STALE, DeliveryStatus.REJECTED}


class RetryLater(Exception):
    """The delivery depends on one that has not been processed yet (a refund before its order):
    the task retries it with backoff, and after MAX_ATTEMPTS it waits for an operator."""


class PayloadError(ApplicationError):
    """The delivery is well formed JSON but cannot be applied as it is."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("bad_payload", message, extra)


# --- Intake ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredDelivery:
    delivery_id: int | None
    duplicate: bool


_INSERT_SQL = """
INSERT INTO online_webhookdelivery
    (shop_domain, webhook_id, topic, event_id, api_version, triggered_at, headers, raw_body, body_size,
     status, error, attempts, duplicates, received_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 0, %s, %s)
ON CONFLICT (shop_domain, webhook_id) DO UPDATE SET duplicates = online_webhookdelivery.duplicates + 1
RETURNING id, duplicates
"""


def delivery_store(
    *, shop_domain: str, webhook_id: str, topic: str, headers: dict[str, str], raw_body: bytes
) -> StoredDelivery:
    """Store a verified delivery durably (one INSERT); queue its processing after commit (batched:
    online.queueing).

    A repeat of (shop, webhook id) stores nothing, counts itself on the first row (the same
    statement) and returns `duplicate=True`.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    limit = getattr(settings, "SHOPIFY_WEBHOOK_MAX_BYTES", 2 * 1024 * 1024)
    oversized = len(raw_body) > limit
    now = timezone.now()
    # One autocommitted INSERT: the row is durable when it returns, and the processing task is
    # queued right after (on_commit runs at once outside a transaction). No BEGIN/COMMIT round trips.
    # Prepared and bound server-side: the body travels as binary bytea instead of an escaped literal.
    rows = fetch_prepared(
        _INSERT_SQL,
        [
            shop_domain[:255],
            webhook_id[:255],
            topic[:100],
            lower.get("x-shopify-event-id", "")[:255],
            lower.get("x-shopify-api-version", "")[:20],
            lower.get("x-shopify-triggered-at", "")[:64],
            json.dumps(headers),
            raw_body,
            len(raw_body),
            DeliveryStatus.REJECTED if oversized else DeliveryStatus.RECEIVED,
            f"Body of {len(raw_body)} bytes exceeds the {limit}-byte processing limit "
            "(SHOPIFY_WEBHOOK_MAX_BYTES); raise it and replay."
            if oversized
            else "",
            now,
            now,
        ],
    )
    delivery_id, duplicates = rows[0]
    if duplicates:  # the row was there: this repeat only counted
        return StoredDelivery(delivery_id=None, duplicate=True)
    if not oversized:
        transaction.on_commit(partial(queueing.enqueue, delivery_id))
    return StoredDelivery(delivery_id=delivery_id, duplicate=False)


def deliveries_requeue_stuck(*, older_than_seconds: int = 120) -> int:
    """Queue deliveries left `received`, `processing` or `failed` for too long (lost messages, dead workers)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        WebhookDelivery.objects.filter(
            status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING, DeliveryStatus.FAILED],
            updated_at__lt=cutoff,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:1000]
    )
    queueing.publish(ids)
    return len(ids)


def delivery_replay(*, actor: Any, delivery_id: int) -> None:
    """An operator fixed the cause of an error: process the stored delivery again."""
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.RECEIVED, error=f"replayed by {actor.get_username()}", updated_at=timezone.now()
        )
        if updated:
            transaction.on_commit(partial(queueing.queue_one, delivery_id))


# --- Processing ----------------------------------------------------------------------------------


Handler = Callable[[dict[str, Any], WebhookDelivery], str]


def delivery_process(*, delivery_id: int) -> str:
    """Apply one stored delivery exactly once. Returns the final status.

    Transient errors propagate (the task retries); the attempt is recorded first.
    """
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
            if delivery is None or delivery.status in FINAL_STATUSES:
                return delivery.status if delivery else "missing"
            delivery.attempts += 1
            status, error = _process_locked(delivery)
            delivery.status = status
            delivery.error = error
            delivery.processed_at = timezone.now()
            delivery.save(update_fields=["status", "error", "attempts", "processed_at", "updated_at"])
            return status
    except Exception as exc:
        # Retried by the task (and the sweeper) until MAX_ATTEMPTS; then it waits for an operator.
        attempts = WebhookDelivery.objects.filter(pk=delivery_id).values_list("attempts", flat=True).first() or 0
        gave_up = attempts + 1 >= MAX_ATTEMPTS
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.ERROR if gave_up else DeliveryStatus.FAILED,
            error=(f"Gave up after {attempts + 1} attempts: " if gave_up else "")
            + f"{type(exc).__name__}: {exc}"[:2000],
            attempts=F("attempts") + 1,
            updated_at=timezone.now(),
        )
        raise


def _process_locked(delivery: WebhookDelivery) -> tuple[str, str]:
    try:
        payload = json.loads(bytes(delivery.raw_body))
    except (ValueError, UnicodeDecodeError) as exc:
        return DeliveryStatus.REJECTED, f"Malformed JSON: {exc}"
    if not isinstance(payload, dict):
        return DeliveryStatus.REJECTED, "Malformed payload: expected a JSON object."
    if contains_nul(payload):  # PostgreSQL cannot store it: every retry would fail the same way
        return DeliveryStatus.REJECTED, "Malformed payload: text with a NUL character (\\u0000)."
    handler = handlers().get(delivery.topic)
    if handler is None:
        return DeliveryStatus.IGNORED, f"Topic {delivery.topic} is not handled."
    try:
        with transaction.atomic():
            note = handler(payload, delivery)
    except ApplicationError as exc:
        return DeliveryStatus.ERROR, exc.message
    except (ValueError, TypeError, ArithmeticError) as exc:  # the payload's shape: a retry fails the same way
        return DeliveryStatus.REJECTED, f"Malformed payload: {type(exc).__name__}: {exc}"[:2000]
    if note == DeliveryStatus.STALE:
        return DeliveryStatus.STALE, "An equal or newer version was already applied."
    return DeliveryStatus.PROCESSED, note


def handlers() -> dict[str, Handler]:
    """Topic -> handler. Customers and orders handlers live in online.sales_handlers (they call higher apps)."""
    table: dict[str, Handler] = {
        "products/create": handle_product,
        "products/update": handle_product,
        "inventory_levels/update": handle_inventory_level,
    }
    from .sales_handlers import HANDLERS as sales_handlers

    table.update(sales_handlers)
    return table


# --- Helpers shared by handlers --------------------------------------------------------------------


def require(payload: dict[str, Any], *names: str) -> list[Any]:
    missing = [name for name in names if payload.get(name) in (None, "")]
    if missing:
        raise PayloadError(f"Missing required field(s): {', '.join(missing)}.", {"missing": missing})
    return [payload[name] for name in names]


def parse_time(value: Any, field: str = "updated_at") -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise PayloadError(f"{field} is not an ISO-8601 time: {value!r}.")
    return parsed


def parse_money(value: Any, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise PayloadError(f"{field} is not an amount: {value!r}.") from exc
    if not amount.is_finite():
        raise PayloadError(f"{field} is not an amount: {value!r}.")
    return amount


def claim_version(*, resource_type: str, resource_id: int, updated_at: datetime, delivery: WebhookDelivery) -> bool:
    """Record that this version of a resource is being applied; False when an equal or newer one was.

    Caller must be inside the transaction that applies the effect, so a failure releases the claim.
    """
    version, created = OnlineResourceVersion.objects.select_for_update().get_or_create(
        resource_type=resource_type,
        resource_id=resource_id,
        defaults={"updated_at": updated_at, "applied_delivery": delivery},
    )
    if created:
        return True
    if updated_at <= version.updated_at:
        return False
    version.updated_at = updated_at
    version.applied_delivery = delivery
    version.save(update_fields=["updated_at", "applied_delivery"])
    return True


def location_for_online(online_location_id: Any) -> Location | None:
    if online_location_id in (None, ""):
        return None
    mapping = OnlineLocation.objects.select_related("location").filter(online_location_id=online_location_id).first()
    return mapping.location if mapping else None


# --- Catalogue and inventory handlers ----------------------------------------------------------------


def handle_product(payload: dict[str, Any], delivery: WebhookDelivery) -> str:
    product_id, title, updated = require(payload, "id", "title", "updated_at")
    if not claim_version(
        resource_type="product", resource_id=int(product_id), updated_at=parse_time(updated), delivery=delivery
    ):
        return DeliveryStatus.STALE
    options = [str(option.get("name", "")).lower() for option in payload.get("options") or []]
    variants = []
    for raw in payload.get("variants") or []:
        values = [raw.get("option1"), raw.get("option2"), raw.get("option3")]
        named = dict(zip(options, values, strict=False))
        variants.append(
            VariantData(
                sku=(raw.get("sku") or "").strip(),
                size=str(named.get("size") or "One size"),
                colour=str(named.get("color") or named.get("colour") or ""),
                price=parse_money(raw.get("price", "0"), "variants[].price"),
                barcode=(raw.get("barcode") or "").strip() or None,
                online_variant_id=raw.get("id"),
                online_inventory_item_id=raw.get("inventory_item_id"),
            )
        )
    result = catalogue_upsert_product(
        actor=ACTOR,
        online_product_id=int(product_id),
        style=str(payload.get("handle") or f"online-{product_id}")[:40],
        name=str(title),
        brand=str(payload.get("vendor") or ""),
        category=str(payload.get("product_type") or "uncategorised").lower(),
        is_active=payload.get("status", "active") == "active",
        variants=variants,
    )
    summary = f"{len(result.created)} variants created, {len(result.updated)} updated"
    return "; ".join([summary, *result.skipped])


def handle_inventory_level(payload: dict[str, Any], delivery: WebhookDelivery) -> str:
    """Record the store's view of a level; recognise echoes of our own pushes; flag differences."""
    item_id, online_location_id, updated = require(payload, "inventory_item_id", "location_id", "updated_at")
    updated_at = parse_time(updated)
    variant = Variant.objects.filter(online_inventory_item_id=item_id).first()
    if variant is None:
        raise PayloadError(
            f"Unknown inventory item {item_id}: add the variant to the catalogue, then replay.",
            {"inventory_item_id": item_id},
        )
    location = location_for_online(online_location_id)
    if location is None:
        raise PayloadError(
            f"Online location {online_location_id} is not mapped to an Omni location: map it, then replay.",
            {"location_id": online_location_id},
        )
    level, _ = OnlineInventoryLevel.objects.select_for_update().get_or_create(location=location, variant=variant)
    if level.online_updated_at and updated_at <= level.online_updated_at:
        return DeliveryStatus.STALE
    available = payload.get("available")
    level.online_available = available
    level.online_updated_at = updated_at
    if available is not None and available == level.pushed_available:
        level.echoes += 1
        level.differs = False
        note = "echo of our own push"
    else:
        level.differs = available is not None
        note = f"online reports {available}, Omni pushed {level.pushed_available}"
    level.save()
    return note
