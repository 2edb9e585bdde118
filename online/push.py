"""Inventory out: push available stock to the online store, coalesced, throttled, compare-and-swap.

Collector (beat, every few seconds): reads the stock outbox (omni.LiveEvent, topic "stock") since
its last run, keeps the levels at push-enabled online locations, and for each one whose available
quantity differs from what we last pushed, queues an `inventorySetQuantities` of the CURRENT
value. A burst of 50 changes to one level between runs becomes one push (coalescing).

Outbox ids commit out of order (a transaction that took id 10 may commit after id 11 was read),
so each run re-reads an overlap window behind the previous run; pushes are computed from current
state and skipped when nothing changed, so reading an event twice costs nothing.

Sender (task per push): one idempotency key per logical push, reused on transport retries;
429 / THROTTLED -> retry after the advertised wait; CHANGE_FROM_QUANTITY_STALE -> re-read the
store's quantities and queue a new push (new key) from fresh values. No database transaction is
held open while talking to the store.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inventory.models import StockLevel, Variant
from omni.models import LiveEvent

from .client import OnlineStoreClient, QuantityChange
from .models import (
    DriftReport,
    InventoryPush,
    OnlineInventoryLevel,
    OnlineLocation,
    PushStatus,
    SyncCursor,
)

logger = logging.getLogger(__name__)
BATCH = 250  # the API's limit of quantities per call
OVERLAP = timedelta(seconds=30)
CURSOR = "inventory-push"


def client() -> OnlineStoreClient:
    return OnlineStoreClient(base_url=settings.SHOPIFY_ADMIN_API_URL, access_token=settings.SHOPIFY_ACCESS_TOKEN)


def _push_enabled() -> bool:
    return bool(settings.SHOPIFY_ADMIN_API_URL)


def inventory_push_collect() -> int:
    """Queue pushes for levels whose available stock changed since the last run. Returns pushes queued."""
    if not _push_enabled():
        return 0
    started = timezone.now()
    with transaction.atomic():
        cursor, _ = SyncCursor.objects.select_for_update().get_or_create(name=CURSOR)
        since = (
            datetime.fromtimestamp(cursor.position / 1000, tz=UTC) - OVERLAP if cursor.position else started - OVERLAP
        )
        pairs: set[tuple[int, int]] = set()
        for payload in LiveEvent.objects.filter(topic="stock", created_at__gte=since).values_list("payload", flat=True):
            pairs.update((int(loc), int(var)) for loc, var in payload.get("levels", []))
        cursor.position = int(started.timestamp() * 1000)
        cursor.save(update_fields=["position", "updated_at"])
        pushes = _queue_pushes(pairs)
    return len(pushes)


def _queue_pushes(pairs: set[tuple[int, int]], *, force: bool = False) -> list[InventoryPush]:
    """Create pushes for `pairs` whose current available differs from the last pushed value.

    Caller must be inside transaction.atomic; sending starts after commit.
    """
    if not pairs:
        return []
    mapped = dict(
        OnlineLocation.objects.filter(push_enabled=True, location_id__in={loc for loc, _ in pairs}).values_list(
            "location_id", "online_location_id"
        )
    )
    pairs = {(loc, var) for loc, var in pairs if loc in mapped}
    if not pairs:
        return []
    items = dict(
        Variant.objects.filter(pk__in={var for _, var in pairs}, online_inventory_item_id__isnull=False).values_list(
            "pk", "online_inventory_item_id"
        )
    )
    pairs = {(loc, var) for loc, var in pairs if var in items}
    condition = Q()
    for loc, var in pairs:
        condition |= Q(location_id=loc, variant_id=var)
    available = {
        (loc, var): max(0, avail)
        for loc, var, avail in StockLevel.objects.filter(condition).values_list(
            "location_id", "variant_id", "available"
        )
    }
    known = {(level.location_id, level.variant_id): level for level in OnlineInventoryLevel.objects.filter(condition)}
    by_location: dict[int, list[dict[str, int | None]]] = defaultdict(list)
    for loc, var in sorted(pairs):
        quantity = available.get((loc, var), 0)
        level = known.get((loc, var))
        if level is not None and level.pushed_available == quantity and not force:
            continue
        change_from = None
        if level is not None:
            change_from = level.online_available if level.online_available is not None else level.pushed_available
        by_location[loc].append({"variant_id": var, "quantity": quantity, "change_from": change_from})
    pushes = []
    for loc, quantities in by_location.items():
        for start in range(0, len(quantities), BATCH):
            pushes.append(
                InventoryPush.objects.create(
                    location_id=loc, idempotency_key=uuid.uuid4().hex, quantities=quantities[start : start + BATCH]
                )
            )
    for push in pushes:
        transaction.on_commit(partial(_enqueue_send, push.pk))
    return pushes


def _enqueue_send(push_id: int) -> None:
    from .tasks import inventory_push_send as task

    try:
        task.delay(push_id=push_id)
    except Exception:
        logger.warning("could not queue push %s", push_id, exc_info=True)


@dataclass
class SendResult:
    status: str
    retry_after: float | None = None


def inventory_push_send(*, push_id: int) -> SendResult:
    """Send one push. Returns the status, and `retry_after` when the task should try again later."""
    push = InventoryPush.objects.select_related("location__online_location").filter(pk=push_id).first()
    if push is None or push.status != PushStatus.PENDING:
        return SendResult(push.status if push else "missing")
    online_location = push.location.online_location
    items = dict(
        Variant.objects.filter(pk__in=[q["variant_id"] for q in push.quantities]).values_list(
            "pk", "online_inventory_item_id"
        )
    )
    changes = [
        QuantityChange(item_id=item_id, quantity=q["quantity"], change_from=q["change_from"])
        for q in push.quantities
        if (item_id := items.get(q["variant_id"])) is not None
    ]
    InventoryPush.objects.filter(pk=push.pk).update(attempts=push.attempts + 1)
    outcome = client().set_quantities(
        location_id=online_location.online_location_id,
        changes=changes,
        idempotency_key=push.idempotency_key,
        reference=f"gid://omni/StockSync/{push.pk}",
    )
    now = timezone.now()
    if outcome.kind == "ok":
        with transaction.atomic():
            InventoryPush.objects.filter(pk=push.pk).update(status=PushStatus.SENT, sent_at=now, error="")
            for quantity in push.quantities:
                OnlineInventoryLevel.objects.update_or_create(
                    location_id=push.location_id,
                    variant_id=quantity["variant_id"],
                    defaults={"pushed_available": quantity["quantity"], "pushed_at": now},
                )
            OnlineLocation.objects.filter(pk=online_location.pk).update(last_push_at=now, last_push_error="")
        return SendResult(PushStatus.SENT)
    if outcome.kind in {"throttled", "retry", "transport"}:
        InventoryPush.objects.filter(pk=push.pk).update(error=outcome.message)
        wait = outcome.retry_after if outcome.retry_after is not None else min(300.0, 2.0 ** (push.attempts + 1))
        return SendResult("retrying", retry_after=wait)
    if outcome.kind in {"stale", "new_key"}:
        return _supersede(push, outcome.message)
    InventoryPush.objects.filter(pk=push.pk).update(status=PushStatus.FAILED, error=outcome.message)
    OnlineLocation.objects.filter(pk=online_location.pk).update(last_push_error=outcome.message[:2000])
    return SendResult(PushStatus.FAILED)


def _supersede(push: InventoryPush, why: str) -> SendResult:
    """Re-read the store's quantities, then queue a new push (new key) from fresh values."""
    online_location = push.location.online_location
    try:
        online = client().location_levels(location_id=online_location.online_location_id)
    except Exception as exc:  # noqa: BLE001 - try the whole push again later
        InventoryPush.objects.filter(pk=push.pk).update(error=f"{why}; re-read failed: {exc}")
        return SendResult("retrying", retry_after=5.0)
    variant_ids = [q["variant_id"] for q in push.quantities]
    items = dict(Variant.objects.filter(pk__in=variant_ids).values_list("pk", "online_inventory_item_id"))
    with transaction.atomic():
        for variant_id in variant_ids:
            OnlineInventoryLevel.objects.update_or_create(
                location_id=push.location_id,
                variant_id=variant_id,
                defaults={"online_available": online.get(items.get(variant_id) or 0), "pushed_available": None},
            )
        replacements = _queue_pushes({(push.location_id, v) for v in variant_ids}, force=True)
        InventoryPush.objects.filter(pk=push.pk).update(
            status=PushStatus.FAILED,
            error=f"{why}; superseded by {', '.join(str(p.pk) for p in replacements) or 'nothing'}",
        )
    return SendResult("superseded")


def inventory_reconcile_all() -> int:
    """Compare Omni's available stock with the store's at every mapped location; record drift."""
    if not _push_enabled():
        return 0
    drifted = 0
    for mapping in OnlineLocation.objects.filter(push_enabled=True).select_related("location"):
        drifted += inventory_reconcile_location(mapping=mapping).drifted
    return drifted


def inventory_reconcile_location(*, mapping: OnlineLocation) -> DriftReport:
    online = client().location_levels(location_id=mapping.online_location_id)
    variants = list(
        Variant.objects.filter(online_inventory_item_id__isnull=False).values_list(
            "pk", "sku", "online_inventory_item_id"
        )
    )
    available = dict(StockLevel.objects.filter(location_id=mapping.location_id).values_list("variant_id", "available"))
    details = []
    for variant_id, sku, item_id in variants:
        if item_id is None:
            continue
        ours = max(0, available.get(variant_id, 0))
        theirs = online.get(item_id)
        if theirs is not None and theirs != ours:
            details.append({"sku": sku, "omni": ours, "online": theirs})
    now = timezone.now()
    report = DriftReport.objects.create(
        location_id=mapping.location_id, checked=len(variants), drifted=len(details), details=details[:500]
    )
    OnlineLocation.objects.filter(pk=mapping.pk).update(last_reconciled_at=now, drift_count=len(details))
    return report
