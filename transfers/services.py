"""Every write to a transfer: the state machine, the demand contract with orders, the planners' runs.

Each transition locks the transfer row (transfers.locks), checks the state, applies its stock
effect through inventory.services (one idempotent operation per transfer and action, so a retry
never moves stock twice) and records a TransferEvent, all in one transaction. Nothing else changes
`Transfer.status`.

Stock effects per line (see transfers.models for the diagram); "order lines" (`for_order`) hold
units an order already committed at the origin, so they need no reservation of their own:

    approve   origin reserved +q (Guard.AVAILABLE)          order lines: nothing
    dispatch  origin reserved -q, on_hand -d                 order lines: committed -d, on_hand -d
              destination incoming +d
    receive   destination incoming -d, on_hand +d            order lines: committed +d as well
              then shortages (on_hand -x) and overages (on_hand +x), each its own movement with
              reason transfer_in and reason_code "shortage" / "overage", flagged to a manager
    cancel    origin reserved -q (if approved)               order lines: nothing (the order decides)
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from inventory.errors import InsufficientStockError
from inventory.models import Location, LocationKind, MovementReason, Variant
from inventory.services import Guard, LevelChange, Reference, SystemActor, stock_apply
from omni.live import live_publish

from .errors import InvalidTransferError, ScanError, TransferNotFoundError, TransferStateError
from .locks import transfer_lines_lock, transfer_lock, transfer_route_lock
from .models import (
    OPEN_STATUSES,
    PlanRun,
    ReplenishmentPolicy,
    Transfer,
    TransferEvent,
    TransferEventKind,
    TransferLine,
    TransferSource,
    TransferStatus,
)

logger = logging.getLogger(__name__)
# Sent inside the receiving transaction when a transfer carrying an order's units was received
# (transfer_id=). Transfers never import orders: orders listens and acts after commit.
transfer_received = Signal()
PLANNER_ACTOR = SystemActor("planner")
MAX_LINES = 5000  # a manual or demand request; the planners build theirs in bulk


# --- Helpers -------------------------------------------------------------------------------------


def _actor_fields(actor: Any) -> tuple[Any, str]:
    """(user or None, label) for an actor; the same rule as inventory's."""
    if isinstance(actor, SystemActor):
        return None, actor.label
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise ValueError("A transfer change needs an actor: a signed-in user or a SystemActor.")
    return actor, actor.get_username()


def _event(
    transfer: Transfer, kind: str, actor: Any, message: str = "", data: dict[str, Any] | None = None
) -> TransferEvent:
    user, label = _actor_fields(actor)
    return TransferEvent.objects.create(
        transfer=transfer, kind=kind, actor=user, actor_label=label, message=message[:255], data=data or {}
    )


def _publish(transfer: Transfer, action: str) -> None:
    live_publish(
        topic="transfers",
        payload={
            "transfer": transfer.pk,
            "action": action,
            "status": transfer.status,
            "origin": transfer.origin_id,
            "destination": transfer.destination_id,
        },
    )


def transfer_reference(transfer: Transfer) -> Reference:
    return Reference("transfer", transfer.code)


def _locked(transfer_id: int) -> Transfer:
    transfer = transfer_lock(transfer_id=transfer_id)
    if transfer is None:
        raise TransferNotFoundError(transfer_id)
    return transfer


def _require(transfer: Transfer, allowed: Iterable[str], action: str) -> None:
    if transfer.status not in set(allowed):
        raise TransferStateError(code=transfer.code, status=transfer.status, action=action)


def _check_lines(lines: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Validate (variant_id, quantity) pairs and merge repeats: {variant_id: quantity}."""
    if not lines:
        raise InvalidTransferError("A transfer needs at least one line.")
    if len(lines) > MAX_LINES:
        raise InvalidTransferError(f"A transfer has at most {MAX_LINES} lines.")
    merged: dict[int, int] = defaultdict(int)
    for line in lines:
        try:
            variant_id, quantity = line
        except (TypeError, ValueError):
            raise InvalidTransferError("Each line is a (variant, quantity) pair.") from None
        for number in (variant_id, quantity):
            if isinstance(number, bool) or not isinstance(number, int):
                raise InvalidTransferError("Variant ids and quantities are whole numbers.")
        if quantity <= 0:
            raise InvalidTransferError("Quantities must be greater than zero.", {"variant_id": variant_id})
        merged[variant_id] += quantity
    found = set(Variant.objects.filter(pk__in=list(merged)).values_list("pk", flat=True))
    missing = sorted(set(merged) - found)
    if missing:
        raise InvalidTransferError("Some products do not exist.", {"variant_ids": missing})
    return dict(merged)


def _check_route(origin_id: int, destination_id: int) -> tuple[Location, Location]:
    if origin_id == destination_id:
        raise InvalidTransferError("A transfer goes from one location to another.")
    locations = Location.objects.in_bulk([origin_id, destination_id])
    origin, destination = locations.get(origin_id), locations.get(destination_id)
    if origin is None or destination is None:
        raise InvalidTransferError("Unknown location.", {"origin_id": origin_id, "destination_id": destination_id})
    if not origin.is_active or not origin.sends_transfers:
        raise InvalidTransferError(f"{origin.name} does not send transfers.", {"location_id": origin.pk})
    if not destination.is_active or not destination.receives_transfers:
        raise InvalidTransferError(f"{destination.name} does not receive transfers.", {"location_id": destination.pk})
    return origin, destination


def _prices(variant_ids: Iterable[int]) -> dict[int, Decimal]:
    return dict(Variant.objects.filter(pk__in=list(variant_ids)).values_list("pk", "price"))


# --- Creating transfers --------------------------------------------------------------------------


def transfer_create(
    *,
    actor: Any,
    origin_id: int,
    destination_id: int,
    lines: Sequence[tuple[int, int]],
    reason: str = "",
    source: str = TransferSource.MANUAL,
    idempotency_key: str | None = None,
) -> Transfer:
    """A proposed transfer (a manager's, usually): it waits for approval (`transfer_approve`).

    Idempotent by `idempotency_key`: a repeat returns the first transfer.
    Raises InvalidTransferError for bad locations or lines.
    """
    if idempotency_key:
        existing = Transfer.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    _check_route(origin_id, destination_id)
    quantities = _check_lines(lines)
    prices = _prices(quantities)
    user, label = _actor_fields(actor)
    try:
        with transaction.atomic():
            transfer = Transfer.objects.create(
                origin_id=origin_id,
                destination_id=destination_id,
                source=source,
                reason=reason[:255],
                idempotency_key=idempotency_key or None,
                created_by=user,
                created_by_label=label,
            )
            TransferLine.objects.bulk_create(
                [
                    TransferLine(
                        transfer=transfer, variant_id=variant_id, quantity=quantity, unit_value=prices[variant_id]
                    )
                    for variant_id, quantity in sorted(quantities.items())
                ]
            )
            _event(
                transfer,
                TransferEventKind.CREATED,
                actor,
                f"{sum(quantities.values())} units on {len(quantities)} lines" + (f": {reason}" if reason else ""),
            )
            _publish(transfer, "created")
            return transfer
    except IntegrityError:
        existing = Transfer.objects.filter(idempotency_key=idempotency_key).first() if idempotency_key else None
        if existing is None:
            raise
        return existing


def transfer_request_for_order(
    *,
    actor: Any,
    origin_id: int,
    destination_id: int,
    lines: list[tuple[int, int]],
    reference: Reference,
    idempotency_key: str,
) -> Transfer:
    """Bring an order's units, already committed at `origin_id`, to the pickup store at once.

    Joins the lane's open transfer (approved or picking, not yet dispatched) when there is one,
    otherwise creates a new approved transfer (demand is always within policy: the units are the
    order's). The lines are `for_order` and carry `reference` (the order), so the order can follow
    them with `transfer_lines_for_reference`. Idempotent by `idempotency_key`: a repeat returns the
    transfer that holds the first request's lines.

    Raises InvalidTransferError for bad locations or lines.
    """
    if not idempotency_key:
        raise InvalidTransferError("A demand request needs an idempotency key.")
    if not reference.type or not reference.id:
        raise InvalidTransferError("A demand request needs the order's reference.")
    existing = _transfer_for_request(idempotency_key)
    if existing is not None:
        return existing
    _check_route(origin_id, destination_id)
    quantities = _check_lines(lines)
    prices = _prices(quantities)
    user, label = _actor_fields(actor)
    now = timezone.now()
    units = sum(quantities.values())
    try:
        with transaction.atomic():
            transfer_route_lock(origin_id=origin_id, destination_id=destination_id)
            open_transfer = (
                Transfer.objects.filter(
                    origin_id=origin_id,
                    destination_id=destination_id,
                    status__in=[TransferStatus.APPROVED, TransferStatus.PICKING],
                )
                .order_by("pk")
                .values_list("pk", flat=True)
                .first()
            )
            transfer = _locked(open_transfer) if open_transfer is not None else None
            joined = transfer is not None and transfer.status in (TransferStatus.APPROVED, TransferStatus.PICKING)
            if not joined:
                transfer = Transfer.objects.create(
                    origin_id=origin_id,
                    destination_id=destination_id,
                    source=TransferSource.DEMAND,
                    status=TransferStatus.APPROVED,
                    reason=f"Collect in store: {reference.type} {reference.id}"[:255],
                    created_by=user,
                    created_by_label=label,
                    auto_approved=True,
                    approved_at=now,
                    approved_by_label=label,
                )
            assert transfer is not None
            TransferLine.objects.bulk_create(
                [
                    TransferLine(
                        transfer=transfer,
                        variant_id=variant_id,
                        quantity=quantity,
                        for_order=True,
                        reference_type=reference.type,
                        reference_id=reference.id,
                        request_key=idempotency_key,
                        unit_value=prices[variant_id],
                        why=f"Collect in store for {reference.type} {reference.id}"[:255],
                    )
                    for variant_id, quantity in sorted(quantities.items())
                ]
            )
            message = f"{units} units for {reference.type} {reference.id}"
            if joined:
                _event(transfer, TransferEventKind.LINES_ADDED, actor, message, {"reference": reference.id})
            else:
                _event(transfer, TransferEventKind.CREATED, actor, message, {"reference": reference.id})
                _event(transfer, TransferEventKind.APPROVED, actor, "Automatic: collect-in-store demand")
            _publish(transfer, "demand")
            return transfer
    except IntegrityError:
        existing = _transfer_for_request(idempotency_key)
        if existing is None:
            raise
        return existing


def _take_units(
    lines: Sequence[TransferLine], remaining: dict[int, int] | None
) -> tuple[list[TransferLine], list[TransferLine], int]:
    """Which of an order's lines go, which shrink, and how many units that takes off.

    `remaining` ({variant_id: units} still to take off, None: everything) is decremented."""
    gone: list[TransferLine] = []
    shrunk: list[TransferLine] = []
    taken = 0
    for line in lines:
        want = line.quantity if remaining is None else min(line.quantity, remaining.get(line.variant_id, 0))
        if not want:
            continue
        taken += want
        if remaining is not None:
            remaining[line.variant_id] -= want
        if want == line.quantity:
            gone.append(line)
        else:
            line.quantity -= want
            line.quantity_picked = min(line.quantity_picked, line.quantity)
            shrunk.append(line)
    return gone, shrunk, taken


def transfer_release_order_lines(
    *,
    actor: Any,
    reference: Reference,
    note: str = "",
    origin_id: int | None = None,
    destination_id: int | None = None,
    units: Mapping[int, int] | None = None,
) -> int:
    """An order no longer needs its units brought over (cancelled before dispatch): take its lines off
    the open transfers that hold them (only those on the route `origin_id` -> `destination_id` when
    given). Returns how many units were taken off.

    `units` ({variant_id: units}) takes off only that many of each variant (part of a collection
    is cancelled): its lines shrink, and one that reaches zero goes. Picked units beyond what is
    left go back to the shelf (the line's picked count shrinks with it).

    Lines already dispatched stay (the goods are on the road and arrive committed at the pickup
    store: the order releases them there). A transfer left with no lines is cancelled. The units
    stay committed at the origin: the order uncommits them. Idempotent: a repeat finds nothing.
    The caller may hold its order's lock: transfers never lock an order, so the order is always
    locked first.
    """
    removed_units = 0
    remaining = dict(units) if units is not None else None
    route = Q()
    if origin_id is not None:
        route &= Q(transfer__origin_id=origin_id)
    if destination_id is not None:
        route &= Q(transfer__destination_id=destination_id)
    transfer_ids = list(
        TransferLine.objects.filter(
            route,
            reference_type=reference.type,
            reference_id=reference.id,
            for_order=True,
            transfer__status__in=OPEN_STATUSES,
        )
        .order_by("transfer_id")
        .values_list("transfer_id", flat=True)
        .distinct()
    )
    for transfer_id in transfer_ids:
        with transaction.atomic():
            transfer = _locked(transfer_id)
            if transfer.status not in OPEN_STATUSES:
                continue
            lines = transfer_lines_lock(transfer_id=transfer.pk)
            mine = [
                line
                for line in lines
                if line.for_order and (line.reference_type, line.reference_id) == (reference.type, reference.id)
            ]
            if not mine:
                continue
            gone, shrunk, taken = _take_units(mine, remaining)
            if not taken:
                continue
            TransferLine.objects.filter(pk__in=[line.pk for line in gone]).delete()
            TransferLine.objects.bulk_update(shrunk, ["quantity", "quantity_picked"])
            removed_units += taken
            message = f"{taken} units for {reference.type} {reference.id} taken off" + (f": {note}" if note else "")
            _event(transfer, TransferEventKind.LINES_REMOVED, actor, message, {"reference": reference.id})
            if len(gone) == len(lines):
                transfer.status = TransferStatus.CANCELLED
                transfer.cancelled_at = timezone.now()
                transfer.save(update_fields=["status", "cancelled_at", "updated_at"])
                _event(transfer, TransferEventKind.CANCELLED, actor, "Nothing left to bring")
            _publish(transfer, "lines_removed")
    return removed_units


def _transfer_for_request(idempotency_key: str) -> Transfer | None:
    line = TransferLine.objects.filter(request_key=idempotency_key).select_related("transfer").first()
    return line.transfer if line is not None else None


# --- The state machine ---------------------------------------------------------------------------


def _merge(changes: Iterable[tuple[int, int, dict[str, int]]], guard: Guard) -> list[LevelChange]:
    """One LevelChange per (location, variant): the engine writes one movement per level and state."""
    merged: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for location_id, variant_id, deltas in changes:
        for state, delta in deltas.items():
            merged[(location_id, variant_id)][state] += delta
    result = []
    for (location_id, variant_id), deltas in sorted(merged.items()):
        change = LevelChange(location_id, variant_id, dict(deltas), guard)
        if change.nonzero():
            result.append(change)
    return result


def transfer_approve(*, actor: Any, transfer_id: int, auto: bool = False) -> Transfer:
    """Approve a proposed transfer: hold its (non-order) units at the origin until dispatch.

    Approving an already approved (or later) transfer returns it unchanged (a double tap).
    Raises TransferStateError when cancelled; InsufficientStockError (nothing written) when the
    origin no longer has the units available.
    """
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if transfer.status != TransferStatus.PROPOSED and transfer.approved_at is not None:
            return transfer
        _require(transfer, [TransferStatus.PROPOSED], "approve")
        lines = transfer_lines_lock(transfer_id=transfer.pk)
        changes = _merge(
            (
                (transfer.origin_id, line.variant_id, {"reserved": line.quantity})
                for line in lines
                if not line.for_order
            ),
            Guard.AVAILABLE,
        )
        if changes:
            stock_apply(
                actor=actor,
                changes=changes,
                reason=MovementReason.RESERVATION,
                reference=transfer_reference(transfer),
                note=f"Held for transfer {transfer.code}",
                idempotency_key=f"transfer:{transfer.pk}:approve",
            )
        _user, label = _actor_fields(actor)
        transfer.status = TransferStatus.APPROVED
        transfer.approved_at = timezone.now()
        transfer.approved_by_label = label
        transfer.auto_approved = auto
        transfer.save(update_fields=["status", "approved_at", "approved_by_label", "auto_approved", "updated_at"])
        units = sum(line.quantity for line in lines)
        _event(
            transfer,
            TransferEventKind.APPROVED,
            actor,
            ("Automatic: within policy" if auto else "Approved") + f"; {units} units held at {transfer.origin.name}",
        )
        _publish(transfer, "approved")
        return transfer


def transfer_auto_approve(*, transfer_id: int) -> Transfer:
    """Approve a planned transfer within policy; when stock moved on meanwhile, leave it for a manager.

    Never raises for missing stock: the transfer stays proposed with the reason and an event.
    """
    try:
        return transfer_approve(actor=PLANNER_ACTOR, transfer_id=transfer_id, auto=True)
    except InsufficientStockError as error:
        with transaction.atomic():
            transfer = _locked(transfer_id)
            if transfer.status != TransferStatus.PROPOSED:
                return transfer
            transfer.needs_approval_reason = f"Automatic approval failed: {error.message}"[:255]
            transfer.save(update_fields=["needs_approval_reason", "updated_at"])
            _event(transfer, TransferEventKind.APPROVAL_FAILED, PLANNER_ACTOR, error.message, error.extra)
            return transfer


def transfer_reject(*, actor: Any, transfer_id: int, note: str = "") -> Transfer:
    """A manager turns a proposal down: it is cancelled (nothing was held)."""
    with transaction.atomic():
        transfer = _locked(transfer_id)
        _require(transfer, [TransferStatus.PROPOSED], "reject")
        transfer.status = TransferStatus.CANCELLED
        transfer.cancelled_at = timezone.now()
        transfer.save(update_fields=["status", "cancelled_at", "updated_at"])
        _event(transfer, TransferEventKind.REJECTED, actor, note or "Rejected")
        _publish(transfer, "rejected")
        return transfer


def transfer_cancel(*, actor: Any, transfer_id: int, note: str = "") -> Transfer:
    """Cancel before dispatch: held units go back to available at the origin.

    Order lines keep their units committed at the origin: the order decides what happens to them
    (it sees the cancelled transfer through transfer_lines_for_reference).
    """
    with transaction.atomic():
        transfer = _locked(transfer_id)
        _require(transfer, OPEN_STATUSES, "cancel")
        lines = transfer_lines_lock(transfer_id=transfer.pk)
        if transfer.approved_at is not None:
            changes = _merge(
                (
                    (transfer.origin_id, line.variant_id, {"reserved": -line.quantity})
                    for line in lines
                    if not line.for_order
                ),
                Guard.NONE,
            )
            if changes:
                stock_apply(
                    actor=actor,
                    changes=changes,
                    reason=MovementReason.RELEASE,
                    reference=transfer_reference(transfer),
                    note=f"Transfer {transfer.code} cancelled",
                    idempotency_key=f"transfer:{transfer.pk}:cancel",
                )
        transfer.status = TransferStatus.CANCELLED
        transfer.cancelled_at = timezone.now()
        transfer.save(update_fields=["status", "cancelled_at", "updated_at"])
        order_units = sum(line.quantity for line in lines if line.for_order)
        message = note or "Cancelled"
        if order_units:
            message += f"; {order_units} order units stay committed at {transfer.origin.name}"
        _event(transfer, TransferEventKind.CANCELLED, actor, message)
        _publish(transfer, "cancelled")
        return transfer


def _variant_for_code(code: str) -> Variant:
    code = (code or "").strip()
    if not code:
        raise ScanError("scan_empty", "Scan or type a barcode or SKU.")
    variant = Variant.objects.filter(Q(barcode=code) | Q(sku=code)).first()
    if variant is None:
        raise ScanError("unknown_variant", f"No product with barcode or SKU {code}.", {"code": code})
    return variant


def _start_picking(transfer: Transfer, actor: Any) -> None:
    if transfer.status == TransferStatus.APPROVED:
        transfer.status = TransferStatus.PICKING
        transfer.picking_started_at = timezone.now()
        transfer.save(update_fields=["status", "picking_started_at", "updated_at"])
        _event(transfer, TransferEventKind.PICKING, actor, "Picking started")


@dataclass
class ScanResult:
    transfer: Transfer
    line: TransferLine
    message: str


def transfer_pick_scan(*, actor: Any, transfer_id: int, code: str, quantity: int = 1) -> ScanResult:
    """Confirm picked units by scanning them at the origin (the first scan starts picking).

    Raises ScanError when the product is unknown, not on the transfer, or already fully picked.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ScanError("invalid_quantity", "Quantity must be a whole number greater than zero.")
    variant = _variant_for_code(code)
    with transaction.atomic():
        transfer = _locked(transfer_id)
        _require(transfer, [TransferStatus.APPROVED, TransferStatus.PICKING], "pick")
        lines = [line for line in transfer_lines_lock(transfer_id=transfer.pk) if line.variant_id == variant.pk]
        if not lines:
            raise ScanError("not_on_transfer", f"{variant.sku} is not on this transfer.", {"sku": variant.sku})
        # Order lines first: a customer is waiting for them.
        lines.sort(key=lambda line: (not line.for_order, line.pk))
        remaining = quantity
        for line in lines:
            take = min(remaining, line.quantity - line.quantity_picked)
            if take > 0:
                line.quantity_picked += take
                remaining -= take
        if remaining:
            planned = sum(line.quantity for line in lines)
            raise ScanError(
                "over_pick",
                f"All {planned} of {variant.sku} are already picked.",
                {"sku": variant.sku, "planned": planned},
            )
        TransferLine.objects.bulk_update(lines, ["quantity_picked"])
        _start_picking(transfer, actor)
        picked = sum(line.quantity_picked for line in lines)
        planned = sum(line.quantity for line in lines)
        return ScanResult(transfer, lines[0], f"{variant.sku}: {picked} of {planned} picked")


def transfer_set_picked(*, actor: Any, transfer_id: int, line_id: int, quantity: int) -> TransferLine:
    """Correct a line's picked count (a mis-scan): 0 up to the planned quantity."""
    with transaction.atomic():
        transfer = _locked(transfer_id)
        _require(transfer, [TransferStatus.APPROVED, TransferStatus.PICKING], "pick")
        line = next((line for line in transfer_lines_lock(transfer_id=transfer.pk) if line.pk == line_id), None)
        if line is None:
            raise InvalidTransferError("That line is not on this transfer.", {"line_id": line_id})
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 <= quantity <= line.quantity:
            raise InvalidTransferError(f"Picked must be between 0 and {line.quantity}.", {"line_id": line_id})
        line.quantity_picked = quantity
        line.save(update_fields=["quantity_picked"])
        _start_picking(transfer, actor)
        return line


def transfer_dispatch(*, actor: Any, transfer_id: int, quantities: Mapping[int, int] | None = None) -> Transfer:
    """The goods leave the origin: it is now in transit and incoming at the destination.

    Ships `quantities` ({line_id: units}, 0..planned) when given, otherwise what was picked, or
    (nothing picked: an API client that does not scan) every planned unit. Held units that do not
    ship are released. Order lines shipped short keep the rest committed at the origin.

    Raises TransferStateError unless approved or picking, InvalidTransferError for bad quantities.
    """
    with transaction.atomic():
        transfer = _locked(transfer_id)
        _require(transfer, [TransferStatus.APPROVED, TransferStatus.PICKING], "dispatch")
        lines = transfer_lines_lock(transfer_id=transfer.pk)
        if quantities is not None:
            unknown = set(quantities) - {line.pk for line in lines}
            if unknown:
                raise InvalidTransferError("Some lines are not on this transfer.", {"line_ids": sorted(unknown)})
            shipped = {line.pk: quantities.get(line.pk, 0) for line in lines}
        elif any(line.quantity_picked for line in lines):
            shipped = {line.pk: line.quantity_picked for line in lines}
        else:
            shipped = {line.pk: line.quantity for line in lines}
        for line in lines:
            units = shipped[line.pk]
            if isinstance(units, bool) or not isinstance(units, int) or not 0 <= units <= line.quantity:
                raise InvalidTransferError(
                    f"{line.variant.sku}: ship between 0 and {line.quantity}.", {"line_id": line.pk}
                )
        total = sum(shipped.values())
        if total <= 0:
            raise InvalidTransferError("Nothing to dispatch: pick the items first, or cancel the transfer.")
        origin_changes = _merge(
            (
                (
                    transfer.origin_id,
                    line.variant_id,
                    {"committed": -shipped[line.pk], "on_hand": -shipped[line.pk]}
                    if line.for_order
                    else {"reserved": -line.quantity, "on_hand": -shipped[line.pk]},
                )
                for line in lines
            ),
            Guard.NONE,
        )
        destination_changes = _merge(
            ((transfer.destination_id, line.variant_id, {"incoming": shipped[line.pk]}) for line in lines),
            Guard.NONE,
        )
        reference = transfer_reference(transfer)
        operations = [
            (transfer.origin_id, origin_changes, MovementReason.TRANSFER_OUT, "out"),
            (transfer.destination_id, destination_changes, MovementReason.INCOMING, "in"),
        ]
        # Lock levels location by location in id order, as every multi-level operation does.
        for _location, changes, reason, suffix in sorted(operations, key=lambda op: op[0]):
            if changes:
                stock_apply(
                    actor=actor,
                    changes=changes,
                    reason=reason,
                    reference=reference,
                    note=f"Transfer {transfer.code} to {transfer.destination.name}"
                    if suffix == "out"
                    else f"Transfer {transfer.code} from {transfer.origin.name}",
                    idempotency_key=f"transfer:{transfer.pk}:dispatch:{suffix}",
                )
        for line in lines:
            line.quantity_dispatched = shipped[line.pk]
        TransferLine.objects.bulk_update(lines, ["quantity_dispatched"])
        _user, label = _actor_fields(actor)
        transfer.status = TransferStatus.IN_TRANSIT
        transfer.dispatched_at = timezone.now()
        transfer.dispatched_by_label = label
        transfer.save(update_fields=["status", "dispatched_at", "dispatched_by_label", "updated_at"])
        planned = sum(line.quantity for line in lines)
        message = f"{total} of {planned} units left {transfer.origin.name}"
        short_order = sum(line.quantity - shipped[line.pk] for line in lines if line.for_order)
        if short_order:
            message += f"; {short_order} order units not shipped stay committed there"
        _event(transfer, TransferEventKind.DISPATCHED, actor, message, {"shipped": total, "planned": planned})
        _publish(transfer, "dispatched")
        return transfer


def transfer_receive_scan(*, actor: Any, transfer_id: int, code: str, quantity: int = 1) -> ScanResult:
    """Count units arriving at the destination by scanning them (expected vs counted, live).

    An item that is not on the transfer is added as an unexpected line (an overage at receipt).
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ScanError("invalid_quantity", "Quantity must be a whole number greater than zero.")
    variant = _variant_for_code(code)
    with transaction.atomic():
        transfer = _locked(transfer_id)
        _require(transfer, [TransferStatus.IN_TRANSIT], "receive")
        lines = [line for line in transfer_lines_lock(transfer_id=transfer.pk) if line.variant_id == variant.pk]
        if not lines:
            line = TransferLine.objects.create(
                transfer=transfer,
                variant=variant,
                quantity=0,
                quantity_dispatched=0,
                quantity_counted=quantity,
                unexpected=True,
                unit_value=variant.price,
                why="Not on the transfer: found at receipt",
            )
            return ScanResult(transfer, line, f"{variant.sku} is not on this transfer: counted as extra")
        lines.sort(key=lambda line: (not line.for_order, line.pk))
        remaining = quantity
        for line in lines:
            take = min(remaining, max(0, line.expected - line.quantity_counted))
            line.quantity_counted += take
            remaining -= take
        lines[-1].quantity_counted += remaining  # beyond what was expected: an overage on the last line
        TransferLine.objects.bulk_update(lines, ["quantity_counted"])
        counted = sum(line.quantity_counted for line in lines)
        expected = sum(line.expected for line in lines)
        note = " (more than expected)" if counted > expected else ""
        return ScanResult(transfer, lines[0], f"{variant.sku}: {counted} of {expected} counted{note}")


def transfer_set_counted(*, actor: Any, transfer_id: int, line_id: int, quantity: int) -> TransferLine:
    """Correct a line's counted units at the destination (a mis-scan, a box counted by hand)."""
    with transaction.atomic():
        transfer = _locked(transfer_id)
        _require(transfer, [TransferStatus.IN_TRANSIT], "receive")
        line = next((line for line in transfer_lines_lock(transfer_id=transfer.pk) if line.pk == line_id), None)
        if line is None:
            raise InvalidTransferError("That line is not on this transfer.", {"line_id": line_id})
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 <= quantity <= 100_000:
            raise InvalidTransferError("Counted must be a whole number, zero or more.", {"line_id": line_id})
        line.quantity_counted = quantity
        line.save(update_fields=["quantity_counted"])
        return line


def transfer_receive(
    *, actor: Any, transfer_id: int, counts: Mapping[int, int] | None = None, as_expected: bool = False
) -> Transfer:
    """Book the arrival: what was counted enters on hand at the destination.

    `counts` ({line_id: units}) replaces the scanned counts when given (every line must be named);
    `as_expected` books every line as it left the origin (a client that does not count); otherwise
    the scanned counts are booked.
    Shortages and overages are recorded as their own movements (reason transfer_in, reason_code
    shortage/overage) and the transfer is flagged to a manager (status discrepancy).

    Raises TransferStateError unless in transit, InvalidTransferError for bad counts.
    """
    with transaction.atomic():
        transfer = _locked(transfer_id)
        _require(transfer, [TransferStatus.IN_TRANSIT], "receive")
        lines = transfer_lines_lock(transfer_id=transfer.pk)
        if counts is not None:
            ids = {line.pk for line in lines}
            unknown, missing = set(counts) - ids, ids - set(counts)
            if unknown or missing:
                raise InvalidTransferError(
                    "Give a count for every line of the transfer, and only those.",
                    {"unknown_line_ids": sorted(unknown), "missing_line_ids": sorted(missing)},
                )
            for line in lines:
                value = counts[line.pk]
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
                    raise InvalidTransferError("Counts are whole numbers, zero or more.", {"line_id": line.pk})
                line.quantity_counted = value
        elif as_expected:
            for line in lines:
                line.quantity_counted = line.expected
        destination = transfer.destination_id
        receipt = _merge(
            (
                (
                    destination,
                    line.variant_id,
                    {
                        "incoming": -line.expected,
                        "on_hand": line.expected,
                        "committed": line.expected if line.for_order else 0,
                    },
                )
                for line in lines
            ),
            Guard.NONE,
        )
        shortages, overages = [], []
        for line in lines:
            variance = line.quantity_counted - line.expected
            if variance < 0:
                deltas = {"on_hand": variance, "committed": variance if line.for_order else 0}
                shortages.append((destination, line.variant_id, deltas))
            elif variance > 0:
                overages.append((destination, line.variant_id, {"on_hand": variance}))
        reference = transfer_reference(transfer)
        if receipt:
            stock_apply(
                actor=actor,
                changes=receipt,
                reason=MovementReason.TRANSFER_IN,
                reference=reference,
                note=f"Transfer {transfer.code} from {transfer.origin.name}",
                idempotency_key=f"transfer:{transfer.pk}:receive",
            )
        for kind, changes in (("shortage", shortages), ("overage", overages)):
            merged = _merge(changes, Guard.FREE)
            if merged:
                stock_apply(
                    actor=actor,
                    changes=merged,
                    reason=MovementReason.TRANSFER_IN,
                    reason_code=kind,
                    reference=reference,
                    note=f"Transfer {transfer.code}: {kind} at receipt",
                    idempotency_key=f"transfer:{transfer.pk}:receive:{kind}",
                )
        for line in lines:
            line.quantity_received = line.quantity_counted
        TransferLine.objects.bulk_update(lines, ["quantity_counted", "quantity_received"])
        expected = sum(line.expected for line in lines)
        received = sum(line.quantity_counted for line in lines)
        short = -sum(min(0, line.quantity_counted - line.expected) for line in lines)
        over = sum(max(0, line.quantity_counted - line.expected) for line in lines)
        _user, label = _actor_fields(actor)
        transfer.has_discrepancy = bool(short or over)
        transfer.status = TransferStatus.DISCREPANCY if transfer.has_discrepancy else TransferStatus.RECEIVED
        transfer.received_at = timezone.now()
        transfer.received_by_label = label
        transfer.save(update_fields=["status", "has_discrepancy", "received_at", "received_by_label", "updated_at"])
        _event(
            transfer,
            TransferEventKind.RECEIVED,
            actor,
            f"{received} of {expected} units received at {transfer.destination.name}",
            {"expected": expected, "received": received},
        )
        if transfer.has_discrepancy:
            detail = [
                {"sku": line.variant.sku, "expected": line.expected, "counted": line.quantity_counted}
                for line in lines
                if line.quantity_counted != line.expected
            ]
            parts = [f"{short} short"] if short else []
            parts += [f"{over} over"] if over else []
            _event(
                transfer,
                TransferEventKind.DISCREPANCY,
                actor,
                f"{' and '.join(parts)}: flagged to a manager",
                {"short": short, "over": over, "lines": detail[:200]},
            )
        _publish(transfer, "received")
        if any(line.for_order for line in lines):  # an order waits at the destination (orders listens)
            transfer_received.send(sender=Transfer, transfer_id=transfer.pk)
        return transfer


def transfer_acknowledge_discrepancy(*, actor: Any, transfer_id: int, note: str = "") -> Transfer:
    """A manager has looked at a receipt's shortage/overage: it leaves the exceptions list."""
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if not transfer.has_discrepancy:
            raise TransferStateError(code=transfer.code, status=transfer.status, action="acknowledge")
        if transfer.discrepancy_acknowledged_at is not None:
            return transfer
        _user, label = _actor_fields(actor)
        transfer.discrepancy_acknowledged_at = timezone.now()
        transfer.discrepancy_acknowledged_by_label = label
        transfer.save(update_fields=["discrepancy_acknowledged_at", "discrepancy_acknowledged_by_label", "updated_at"])
        _event(transfer, TransferEventKind.ACKNOWLEDGED, actor, note or "Acknowledged")
        return transfer


# --- Planning runs ---------------------------------------------------------------------------------


@dataclass
class PlanOutcome:
    run: PlanRun
    created: bool
    auto_approve_ids: list[int] = field(default_factory=list)


def _test_delay() -> float:
    """Tests slow the planner down (inside its transaction) to kill a worker in the middle of a run."""
    if not settings.TESTING:
        return 0.0
    return float(getattr(settings, "OMNI_PLANNER_TEST_DELAY", 0) or os.environ.get("OMNI_PLANNER_TEST_DELAY") or 0)


def _test_marker() -> None:
    marker = os.environ.get("OMNI_PLANNER_TEST_MARKER") if settings.TESTING else None
    if marker:
        with open(marker, "w") as handle:
            handle.write(str(os.getpid()))


def plan_run(
    *,
    planners: Sequence[str],
    key: str,
    now: datetime | None = None,
    actor: Any = PLANNER_ACTOR,
) -> PlanOutcome:
    """Run the planners once for `key` (e.g. "replenishment:2026-11-23"), or find that run.

    The run, its transfers, their lines and events are written in ONE transaction whose first
    write is the PlanRun row (unique key): a concurrent duplicate waits on it and then finds the
    run; a run killed midway leaves nothing, so the next attempt recomputes and writes all of it.
    Returns the run and the ids of transfers within policy (to approve, `plan_auto_approve`).
    """
    from . import planning

    unknown = set(planners) - set(planning.PLANNERS)
    if unknown or not planners:
        raise ValueError(f"Unknown planners: {sorted(unknown)}")
    existing = PlanRun.objects.filter(key=key).first()
    if existing is not None:
        return PlanOutcome(existing, created=False, auto_approve_ids=_pending_auto_approvals(existing))
    now = now or timezone.now()
    started = time.monotonic()
    try:
        with transaction.atomic():
            run = PlanRun.objects.create(
                key=key, planners=",".join(planners), started_at=now, finished_at=now, parameters={}, counts={}
            )
            _test_marker()
            plan = planning.compute_plan(planners=planners, now=now)
            delay = _test_delay()
            if delay:
                time.sleep(delay)
            persisting = time.monotonic()
            transfers = planning.persist_plan(plan=plan, run=run, actor=actor)
            timings = {**plan.counts.get("timings", {}), "persist_ms": round((time.monotonic() - persisting) * 1000)}
            run.parameters = plan.parameters
            run.counts = {**plan.counts, "transfers": len(transfers), "timings": timings}
            run.finished_at = timezone.now()
            run.duration_ms = int((time.monotonic() - started) * 1000)
            run.save(update_fields=["parameters", "counts", "finished_at", "duration_ms"])
            live_publish(topic="transfers", payload={"plan_run": run.pk, "transfers": len(transfers)})
    except IntegrityError:
        existing = PlanRun.objects.filter(key=key).first()
        if existing is None:
            raise
        return PlanOutcome(existing, created=False, auto_approve_ids=_pending_auto_approvals(existing))
    return PlanOutcome(run, created=True, auto_approve_ids=_pending_auto_approvals(run))


def _pending_auto_approvals(run: PlanRun) -> list[int]:
    return list(
        Transfer.objects.filter(plan_run=run, status=TransferStatus.PROPOSED, needs_approval_reason="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def plan_auto_approve(*, run_id: int) -> int:
    """Approve the run's transfers that are within policy, one transaction each. Returns how many.

    Resumable: a transfer approved before a crash is skipped, one that failed stays for a manager.
    """
    approved = 0
    run = PlanRun.objects.get(pk=run_id)
    for transfer_id in _pending_auto_approvals(run):
        if transfer_auto_approve(transfer_id=transfer_id).status == TransferStatus.APPROVED:
            approved += 1
    return approved


def policy_ensure_for_stores(*, target_days: Decimal = Decimal("14"), min_display: int = 0) -> int:
    """Give every active store without a policy a default one. Returns how many were created."""
    stores = Location.objects.active().filter(kind=LocationKind.STORE).exclude(replenishment_policy__isnull=False)
    created = ReplenishmentPolicy.objects.bulk_create(
        [
            ReplenishmentPolicy(location=store, target_days_of_cover=target_days, min_display_quantity=min_display)
            for store in stores
        ],
        ignore_conflicts=True,
    )
    return len(created)
