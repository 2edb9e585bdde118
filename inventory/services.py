"""Every stock write. Each operation is atomic, idempotent by key, and leaves ledger movements.

The engine
----------
An operation is a list of `LevelChange`s: signed deltas to the states of one (location, variant)
level, plus a guard saying what must still hold afterwards. `_apply` runs it:

1. If movements already exist for the operation key, the operation happened: return them.
2. Insert the movements (the evidence) first, then apply each change as ONE guarded
   `UPDATE ... SET state = state + delta WHERE <guard>`, levels in (location_id, variant_id) order.
   The UPDATE takes the row lock, re-checks the guard on the newest row version (PostgreSQL's
   READ COMMITTED re-evaluation), and keeps the lock short: evidence before lock, commit right after.
3. An UPDATE that matches no row means the guard failed (or the level does not exist): the
   transaction rolls back and the caller gets an error naming what is available.
4. A live event is written in the same transaction (omni.live), with the movements before the
   level locks are taken, and wakes the screens after commit.

On PostgreSQL a reservation (the hottest write: every cart line) runs steps 2-4 as one call of a
database function that writes the hold, its movement and the live event first and runs the
guarded UPDATE last, so the level's row lock lasts that UPDATE and the commit, not the inserts or
round trips to a separate COMMIT (_reserve_in_one_call, migration inventory 0007). Instead of
step 1, a repeated key is caught by the hold's unique index and the first hold is returned.

Concurrent duplicates (a double tap) both pass step 1; the second then blocks on the unique
idempotency key until the first commits, gets IntegrityError, and returns the first's result.
Database CheckConstraints (states >= 0, promised <= on hand) back every guard.

Guards
------
- AVAILABLE: `available` (on hand minus committed, reserved, safety stock, unavailable) stays >= 0.
  Used by everything that sells or holds stock: never sells safety stock, never oversells.
- FREE: on hand stays >= committed + reserved + unavailable (the check constraint): physical
  removals that may dip into safety stock (adjustments, damage).
- NONE: each negative state delta only needs the state itself to stay >= 0.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from omni.actors import SystemActor
from omni.live import _wake as live_wake
from omni.live import live_publish

from .barcodes import is_valid_gtin
from .errors import (
    IdempotencyConflictError,
    InsufficientStockError,
    InvalidQuantityError,
    LocationUnavailableError,
    ReservationClosedError,
)
from .locks import reservations_lock, stock_levels_lock
from .models import (
    STOCK_STATES,
    Location,
    MovementReason,
    Product,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockState,
    Variant,
)
from .prepared import fetch_prepared

# --- Actors ------------------------------------------------------------------------------------


def _actor_fields(actor: Any) -> dict[str, Any]:
    if isinstance(actor, SystemActor):
        return {"actor": None, "actor_label": actor.label}
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise ValueError("A stock operation needs an actor: a signed-in user or a SystemActor.")
    return {"actor": actor, "actor_label": actor.get_username()}


# --- The engine ----------------------------------------------------------------------------------


class Guard(Enum):
    NONE = "none"
    AVAILABLE = "available"
    FREE = "free"


@dataclass(frozen=True)
class LevelChange:
    location_id: int
    variant_id: int
    deltas: dict[str, int]
    guard: Guard = Guard.NONE

    def nonzero(self) -> dict[str, int]:
        return {state: delta for state, delta in self.deltas.items() if delta}


@dataclass(frozen=True)
class Reference:
    """The document that caused a change: `Reference("order", "SO-1042")`."""

    type: str = ""
    id: str = ""


NO_REFERENCE = Reference()


@dataclass
class StockOperation:
    """The result of an operation: its key, its movements, and whether it was a repeat."""

    key: str
    movements: list[StockMovement] = field(default_factory=list)
    duplicate: bool = False


def _new_key(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4().hex}"


_STATE_NAMES = frozenset(STOCK_STATES)


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise InvalidQuantityError()


def _existing_operation(key: str) -> StockOperation | None:
    movements = list(StockMovement.objects.filter(operation_key=key).order_by("pk"))
    return StockOperation(key=key, movements=movements, duplicate=True) if movements else None


def _guard_gain(deltas: dict[str, int], guard: Guard) -> int:
    """How much the guarded figure changes: available for AVAILABLE; for FREE, what is left of on
    hand beside committed, reserved and unavailable (safety stock may be eaten into)."""
    gain = (
        deltas.get("on_hand", 0) - deltas.get("committed", 0) - deltas.get("reserved", 0) - deltas.get("unavailable", 0)
    )
    return gain - deltas.get("safety_stock", 0) if guard is Guard.AVAILABLE else gain


def _guard_sql(change: LevelChange) -> tuple[str, list[int]]:
    """The guard as SQL conditions (ANDed to the level's WHERE clause) and their parameters."""
    deltas = change.nonzero()
    conditions: list[str] = []
    params: list[int] = []
    for state, delta in deltas.items():
        if delta < 0:
            conditions.append(f"{state} >= %s")
            params.append(-delta)
    gain = _guard_gain(deltas, change.guard)
    if change.guard is Guard.AVAILABLE and gain < 0:
        conditions.append("available >= %s")
        params.append(-gain)
    elif change.guard is Guard.FREE and gain < 0:
        conditions.append("on_hand >= committed + reserved + unavailable + %s")
        params.append(-gain)
    return "".join(f" AND {condition}" for condition in conditions), params


def _shortage_error(change: LevelChange) -> InsufficientStockError:
    level = (
        StockLevel.objects.select_related("location", "variant")
        .filter(location_id=change.location_id, variant_id=change.variant_id)
        .first()
    )
    variant = level.variant if level else Variant.objects.get(pk=change.variant_id)
    location = level.location if level else Location.objects.get(pk=change.location_id)
    deltas = change.nonzero()
    extra: dict[str, Any] = {
        "sku": variant.sku,
        "location_id": location.pk,
        "location": location.code,
        "available": max(level.available, 0) if level else 0,
        "on_hand": level.on_hand if level else 0,
    }
    requested = max((-delta for delta in deltas.values() if delta < 0), default=0)
    if change.guard is Guard.AVAILABLE:
        requested = max(requested, deltas.get("reserved", 0), deltas.get("committed", 0), -deltas.get("on_hand", 0))
        message = f"Only {extra['available']} of {variant.sku} available at {location.name}."
    else:
        state = next((s for s, d in deltas.items() if d < 0), "on_hand")
        held = getattr(level, state, 0) if level else 0
        extra[state] = held
        message = f"Not enough {StockState(state).label.lower()} stock of {variant.sku} at {location.name}: {held}."
    extra["requested"] = requested
    return InsufficientStockError(message, extra)


_LEVEL_TABLE = StockLevel._meta.db_table


def _update_level(change: LevelChange, now: datetime) -> bool:
    """One guarded `UPDATE ... SET state = state + delta WHERE <level> AND <guard>`; True if it matched.

    Plain SQL, not QuerySet.update(): this runs for every stock change while the row is locked,
    and compiling the ORM query cost more CPU than executing it. Only known state names (never
    input) are interpolated; every figure is a parameter.
    """
    deltas = change.nonzero()
    unknown = set(deltas) - _STATE_NAMES
    if unknown:
        raise ValueError(f"Unknown stock states: {sorted(unknown)}")
    assignments = ", ".join(f"{state} = {state} + %s" for state in deltas)
    guard, guard_params = _guard_sql(change)
    sql = (
        f"UPDATE {_LEVEL_TABLE} SET {assignments}, updated_at = %s "  # noqa: S608 - names are not input
        f"WHERE location_id = %s AND variant_id = %s{guard}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*deltas.values(), now, change.location_id, change.variant_id, *guard_params])
        return bool(cursor.rowcount == 1)


# Operations with at least this many level changes (a transfer of a few thousand lines) update
# their levels with a handful of statements instead of one per level.
BULK_MIN_CHANGES = 16
_BULK_CHUNK = 1000


def _needs_existing_level(change: LevelChange) -> bool:
    """True when the change can only succeed on an existing level (it takes something away)."""
    deltas = change.nonzero()
    if any(delta < 0 for delta in deltas.values()):
        return True
    # A guard that must find units to give (on a zero level it fails).
    return change.guard is not Guard.NONE and _guard_gain(deltas, change.guard) < 0


def _bulk_applicable(ordered: Sequence[LevelChange]) -> bool:
    """Large operations on PostgreSQL, one change per level, each needing its level to exist.

    Such an operation never creates a level, so it can lock every level first, in the same
    (location, variant) order as every other operation, and then update them all; an operation
    that may create levels keeps the per-level path, where creation happens in that order too.
    """
    return (
        len(ordered) >= BULK_MIN_CHANGES
        and connection.vendor == "postgresql"
        and all(_needs_existing_level(change) for change in ordered)
        # One UPDATE applies one row per level: two changes to a level take the other path.
        and len({(change.location_id, change.variant_id) for change in ordered}) == len(ordered)
    )


def _update_levels_bulk(ordered: Sequence[LevelChange], now: datetime) -> LevelChange | None:
    """Apply sorted changes with one lock statement and one guarded UPDATE per shape and chunk.

    Returns the first change (in lock order) whose level is missing or whose guard failed, after
    which the caller raises and its transaction rolls back; None when every change applied.
    The guards are `_guard_sql`'s, written against each row's own figures (`v.*`).
    """
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), _BULK_CHUNK):
            chunk = ordered[start : start + _BULK_CHUNK]
            # A join to the pairs (an index probe each); `(a, b) IN ((..), ..)` was a scan per chunk.
            cursor.execute(
                f"SELECT 1 FROM {_LEVEL_TABLE} AS l "  # noqa: S608 - the table name is not input
                "JOIN unnest(%s::bigint[], %s::bigint[]) AS v(location_id, variant_id) "
                "ON l.location_id = v.location_id AND l.variant_id = v.variant_id "
                "ORDER BY l.location_id, l.variant_id FOR UPDATE OF l",
                [[change.location_id for change in chunk], [change.variant_id for change in chunk]],
            )
        applied: set[tuple[int, int]] = set()
        shapes: dict[tuple[tuple[str, ...], Guard], list[LevelChange]] = {}
        for change in ordered:
            shapes.setdefault((tuple(sorted(change.nonzero())), change.guard), []).append(change)
        for (states, guard), changes in shapes.items():
            for start in range(0, len(changes), _BULK_CHUNK):
                applied |= _update_shape(cursor, states, guard, changes[start : start + _BULK_CHUNK], now)
    return next((c for c in ordered if (c.location_id, c.variant_id) not in applied), None)


def _update_shape(
    cursor: Any, states: tuple[str, ...], guard: Guard, changes: Sequence[LevelChange], now: datetime
) -> set[tuple[int, int]]:
    """One `UPDATE ... FROM unnest(<one array per column>)` for changes to the same states and guard."""
    unknown = set(states) - _STATE_NAMES
    if unknown:
        raise ValueError(f"Unknown stock states: {sorted(unknown)}")
    conditions = [f"(v.{state} >= 0 OR l.{state} + v.{state} >= 0)" for state in states]
    if guard is Guard.AVAILABLE:
        conditions.append("(v.gain >= 0 OR l.available + v.gain >= 0)")
    elif guard is Guard.FREE:
        conditions.append("(v.gain >= 0 OR l.on_hand - l.committed - l.reserved - l.unavailable + v.gain >= 0)")
    columns: list[list[int]] = [[], [], *([] for _ in states), []]  # location, variant, states, gain
    for change in changes:
        deltas = change.nonzero()
        gain = _guard_gain(deltas, guard)
        row = [change.location_id, change.variant_id, *(deltas[state] for state in states), gain]
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    arrays = ", ".join(["%s::bigint[]"] * len(columns))
    assignments = ", ".join(f"{state} = l.{state} + v.{state}" for state in states)
    where = "".join(f" AND {condition}" for condition in conditions)
    cursor.execute(
        f"UPDATE {_LEVEL_TABLE} AS l SET {assignments}, updated_at = %s "  # noqa: S608 - names are not input
        f"FROM unnest({arrays}) AS v(location_id, variant_id, {', '.join(states)}, gain) "
        f"WHERE l.location_id = v.location_id AND l.variant_id = v.variant_id{where} "
        "RETURNING l.location_id, l.variant_id",
        [now, *columns],
    )
    return {(row[0], row[1]) for row in cursor.fetchall()}


def _apply(
    *,
    key: str,
    changes: Sequence[LevelChange],
    reason: str,
    actor: Any,
    reference: Reference = NO_REFERENCE,
    reason_code: str = "",
    note: str = "",
    reasons: dict[tuple[int, int, str], str] | None = None,
) -> StockOperation:
    """Write movements and apply guarded changes. Caller must be inside transaction.atomic.

    `reasons` overrides the reason per (location_id, variant_id, state) when one operation mixes them.
    Raises InsufficientStockError when a guard fails (the caller's transaction must roll back).
    """
    actor_fields = _actor_fields(actor)
    ordered = sorted(changes, key=lambda c: (c.location_id, c.variant_id))
    movements = [
        StockMovement(
            location_id=change.location_id,
            variant_id=change.variant_id,
            state=state,
            quantity=delta,
            reason=(reasons or {}).get((change.location_id, change.variant_id, state), reason),
            reason_code=reason_code,
            note=note[:255],
            reference_type=reference.type,
            reference_id=reference.id,
            operation_key=key,
            idempotency_key=f"{key}|{change.location_id}|{change.variant_id}|{state}",
            **actor_fields,
        )
        for change in ordered
        for state, delta in change.nonzero().items()
    ]
    StockMovement.objects.bulk_create(movements)
    # The live event is evidence too: written before the level locks are taken, so the locks are
    # held from the first guarded update to the commit and no longer. A guard failure below rolls
    # it back with everything else.
    live_publish(
        topic="stock",
        payload={"levels": sorted({(c.location_id, c.variant_id) for c in ordered}), "reason": reason},
    )
    now = timezone.now()
    if _bulk_applicable(ordered):
        failed = _update_levels_bulk(ordered, now)
        if failed is not None:
            raise _shortage_error(failed)
        return StockOperation(key=key, movements=movements)
    for change in ordered:
        if _update_level(change, now):
            continue
        if not any(delta < 0 for delta in change.nonzero().values()):
            # Only additions and the level does not exist yet: create it, then apply. The guarded
            # update runs again on the new zero row, so a guard (a count of found stock is FREE, a
            # reservation is AVAILABLE) still decides; a failure rolls the new row back with the rest.
            StockLevel.objects.bulk_create(
                [StockLevel(location_id=change.location_id, variant_id=change.variant_id)], ignore_conflicts=True
            )
            if _update_level(change, now):
                continue
        raise _shortage_error(change)
    return StockOperation(key=key, movements=movements)


def _run(
    *,
    key: str,
    changes: Sequence[LevelChange],
    reason: str,
    actor: Any,
    reference: Reference = NO_REFERENCE,
    reason_code: str = "",
    note: str = "",
    check_replay: bool = True,
) -> StockOperation:
    """`_apply` in its own transaction, returning the first result when the key was used before.

    `check_replay=False` when the key was generated for this call: nobody can have used it, so the
    read that looks for an earlier result is skipped (the unique key still backs it).
    """
    if check_replay:
        existing = _existing_operation(key)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            return _apply(
                key=key,
                changes=changes,
                reason=reason,
                actor=actor,
                reference=reference,
                reason_code=reason_code,
                note=note,
            )
    except IntegrityError:
        existing = _existing_operation(key)
        if existing is None:
            raise
        return existing


def _active_location(location_id: int) -> Location:
    location = Location.objects.filter(pk=location_id).first()
    if location is None or not location.is_active:
        raise LocationUnavailableError("That location is not active.", location_id)
    return location


# --- Operations --------------------------------------------------------------------------------


def stock_receive(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    reference: Reference = NO_REFERENCE,
    note: str = "",
    idempotency_key: str | None = None,
) -> StockOperation:
    """Goods arrived (a delivery, a purchase order): on hand grows."""
    _check_quantity(quantity)
    _active_location(location_id)
    return _run(
        key=idempotency_key or _new_key("receive"),
        check_replay=idempotency_key is not None,
        changes=[LevelChange(location_id, variant_id, {"on_hand": quantity})],
        reason=MovementReason.RECEIPT,
        actor=actor,
        reference=reference,
        note=note,
    )


def stock_adjust(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    delta: int,
    reason_code: str,
    note: str = "",
    idempotency_key: str | None = None,
) -> StockOperation:
    """Correct on hand by a signed amount with a reason code (shrinkage, found, data error...).

    A decrease may eat into safety stock but never into what is promised (committed, reserved)
    or set aside (unavailable).
    """
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise InvalidQuantityError("An adjustment is a whole number other than zero.")
    if not reason_code.strip():
        raise InvalidQuantityError("An adjustment needs a reason code.")
    return _run(
        key=idempotency_key or _new_key("adjust"),
        check_replay=idempotency_key is not None,
        changes=[LevelChange(location_id, variant_id, {"on_hand": delta}, Guard.FREE)],
        reason=MovementReason.ADJUSTMENT,
        reason_code=reason_code.strip()[:40],
        actor=actor,
        note=note,
    )


@dataclass(frozen=True)
class CountLine:
    variant_id: int
    counted: int


@dataclass
class CountResult:
    operation: StockOperation
    variances: dict[int, int]  # variant_id -> counted - expected on hand


def stock_count(
    *,
    actor: Any,
    location_id: int,
    lines: Iterable[CountLine],
    reference: Reference = NO_REFERENCE,
    idempotency_key: str | None = None,
) -> CountResult:
    """A stocktake: set on hand to what was counted and record each variance as a movement.

    Locks the counted levels first (pk order) so the expected figure is the one replaced.
    A count below what is promised or set aside fails: release those holds first.
    """
    counted = {line.variant_id: line.counted for line in lines}
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counted.values()):
        raise InvalidQuantityError("A count is a whole number, zero or more.")
    if not counted:
        raise InvalidQuantityError("A count needs at least one line.")
    _active_location(location_id)
    key = idempotency_key or _new_key("count")
    existing = _existing_operation(key) if idempotency_key is not None else None
    if existing is not None:
        return CountResult(existing, {m.variant_id: m.quantity for m in existing.movements})
    now = timezone.now()
    try:
        with transaction.atomic():
            levels = stock_levels_lock(pairs=[(location_id, v) for v in sorted(counted)])
            variances = {}
            changes = []
            for variant_id, quantity in counted.items():
                level = levels.get((location_id, variant_id))
                variance = quantity - (level.on_hand if level else 0)
                variances[variant_id] = variance
                if variance:
                    changes.append(LevelChange(location_id, variant_id, {"on_hand": variance}, Guard.FREE))
            operation = (
                _apply(key=key, changes=changes, reason=MovementReason.COUNT, actor=actor, reference=reference)
                if changes
                else StockOperation(key=key)
            )
            StockLevel.objects.filter(location_id=location_id, variant_id__in=list(counted)).update(
                needs_count=False, last_counted_at=now
            )
            return CountResult(operation, variances)
    except IntegrityError:
        existing = _existing_operation(key)
        if existing is None:
            raise
        return CountResult(existing, {m.variant_id: m.quantity for m in existing.movements})


def stock_mark_damaged(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    note: str = "",
    idempotency_key: str | None = None,
) -> StockOperation:
    """Set sellable units aside as unavailable (damaged, quality control)."""
    _check_quantity(quantity)
    return _run(
        key=idempotency_key or _new_key("damage"),
        check_replay=idempotency_key is not None,
        changes=[LevelChange(location_id, variant_id, {"unavailable": quantity}, Guard.AVAILABLE)],
        reason=MovementReason.DAMAGE,
        actor=actor,
        note=note,
    )


def stock_release_damaged(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    dispose: bool = False,
    note: str = "",
    idempotency_key: str | None = None,
) -> StockOperation:
    """Units leave quality control: back to sellable, or written off (`dispose`) out of on hand."""
    _check_quantity(quantity)
    deltas = {"unavailable": -quantity, "on_hand": -quantity if dispose else 0}
    return _run(
        key=idempotency_key or _new_key("release-damaged"),
        check_replay=idempotency_key is not None,
        changes=[LevelChange(location_id, variant_id, deltas)],
        reason=MovementReason.DAMAGE_RELEASE,
        reason_code="disposed" if dispose else "restocked",
        actor=actor,
        note=note,
    )


def stock_set_safety(
    *, actor: Any, location_id: int, variant_id: int, safety_stock: int, idempotency_key: str | None = None
) -> StockOperation:
    """Set the safety stock held back by policy (a level, recorded as a movement of the difference)."""
    if isinstance(safety_stock, bool) or not isinstance(safety_stock, int) or safety_stock < 0:
        raise InvalidQuantityError("Safety stock is a whole number, zero or more.")
    key = idempotency_key or _new_key("safety")
    existing = _existing_operation(key) if idempotency_key is not None else None
    if existing is not None:
        return existing
    with transaction.atomic():
        level = stock_levels_lock(pairs=[(location_id, variant_id)]).get((location_id, variant_id))
        difference = safety_stock - (level.safety_stock if level else 0)
        if not difference:
            return StockOperation(key=key)
        return _apply(
            key=key,
            changes=[LevelChange(location_id, variant_id, {"safety_stock": difference})],
            reason=MovementReason.POLICY,
            actor=actor,
        )


def stock_reserve(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    expires_at: datetime | None = None,
    hold_until_released: bool = False,
    reference: Reference = NO_REFERENCE,
    idempotency_key: str | None = None,
) -> Reservation:
    """Hold available units until `expires_at` (default: OMNI_RESERVATION_MINUTES from now).

    `hold_until_released` holds with no expiry (e.g. a transfer being picked).

    Raises InsufficientStockError naming what is available. Idempotent by key: a repeat returns
    the first reservation.
    """
    _check_quantity(quantity)
    if hold_until_released:
        expires_at = None
    elif expires_at is None:
        expires_at = timezone.now() + timedelta(minutes=settings.OMNI_RESERVATION_MINUTES)
    key = idempotency_key or _new_key("reserve")
    actor_fields = _actor_fields(actor)
    change = LevelChange(location_id, variant_id, {"reserved": quantity}, Guard.AVAILABLE)
    # A repeated key is caught by its unique index (IntegrityError below): no read before writing.
    try:
        if connection.vendor == "postgresql" and settings.OMNI_ONE_STATEMENT_RESERVE:
            reservation = _reserve_in_one_call(
                change=change, expires_at=expires_at, reference=reference, key=key, actor_fields=actor_fields
            )
            if reservation is None:
                raise _shortage_error(change)
            return reservation
        with transaction.atomic():
            reservation = Reservation.objects.create(
                location_id=location_id,
                variant_id=variant_id,
                quantity=quantity,
                expires_at=expires_at,
                reference_type=reference.type,
                reference_id=reference.id,
                idempotency_key=key,
                created_by=actor_fields["actor"],
            )
            _apply(
                key=key,
                changes=[change],
                reason=MovementReason.RESERVATION,
                actor=actor,
                reference=Reference("reservation", str(reservation.pk)),
            )
            return reservation
    except IntegrityError:
        existing = Reservation.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        if (existing.location_id, existing.variant_id, existing.quantity) != (location_id, variant_id, quantity):
            raise IdempotencyConflictError(key) from None
        return existing


# omni_stock_reserve (migration inventory 0007) writes the hold, its movement and the live event,
# then runs the guarded UPDATE last, so a hot level's row lock lasts only that UPDATE and the commit.
_RESERVE_CALL = """
SELECT reservation_id, event_id FROM omni_stock_reserve(
    %(location_id)s::bigint, %(variant_id)s::bigint, %(quantity)s::integer, %(status)s::text,
    %(expires_at)s::timestamptz, %(reference_type)s::text, %(reference_id)s::text, %(key)s::text,
    %(actor_id)s::bigint, %(actor_label)s::text, %(reason)s::text, %(movement_key)s::text,
    %(payload)s::text::jsonb, %(now)s::timestamptz)
"""
_RESERVATION_FIELDS = [f.attname for f in Reservation._meta.concrete_fields]
_RESERVE_SHORTAGE_SQLSTATE = "P0002"  # no_data_found, raised by omni_stock_reserve when the guard fails


def _reserve_in_one_call(
    *, change: LevelChange, expires_at: datetime | None, reference: Reference, key: str, actor_fields: dict[str, Any]
) -> Reservation | None:
    """Reserve on PostgreSQL in one call; None when the guard failed (nothing was written).

    The same steps as the general path (the hold, its movement, the live event, the guarded
    UPDATE), atomic as one statement. Outside a transaction it commits on its own, so the level's
    row lock lasts the UPDATE and the commit instead of the round trips of a transaction: on a hot
    variant that lock is the queue everyone waits in (bench/hot_variant.py). Inside a caller's
    transaction it runs in a savepoint. A reused key raises IntegrityError.
    """
    quantity = change.deltas["reserved"]
    actor = actor_fields["actor"]
    now = timezone.now()
    values = {
        "location_id": change.location_id,
        "variant_id": change.variant_id,
        "quantity": quantity,
        "status": ReservationStatus.ACTIVE.value,
        "expires_at": expires_at,
        "reference_type": reference.type,
        "reference_id": reference.id,
        "idempotency_key": key,
        "created_by_id": actor.pk if actor is not None else None,
        "created_at": now,
        "closed_at": None,
    }
    params = {
        **values,
        "key": key,
        "now": now,
        "actor_id": values["created_by_id"],
        "actor_label": actor_fields["actor_label"],
        "reason": MovementReason.RESERVATION.value,
        "movement_key": f"{key}|{change.location_id}|{change.variant_id}|reserved",
        "payload": json.dumps({"levels": [[change.location_id, change.variant_id]], "reason": "reservation"}),
    }
    db = connections[DEFAULT_DB_ALIAS]  # once: each `connection.x` is a lookup through asgiref's Local
    in_transaction = db.in_atomic_block
    try:
        with transaction.atomic() if in_transaction else contextlib.nullcontext():
            ((reservation_id, event_id),) = fetch_prepared(_RESERVE_CALL, params, db=db)
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) == _RESERVE_SHORTAGE_SQLSTATE:
            return None
        raise
    row = {**values, "id": reservation_id}
    reservation = Reservation.from_db(
        DEFAULT_DB_ALIAS, _RESERVATION_FIELDS, [row[name] for name in _RESERVATION_FIELDS]
    )
    if in_transaction:
        transaction.on_commit(partial(live_wake, event_id))
    else:
        live_wake(event_id)  # committed already (autocommit)
    return reservation


def _close_reservations(
    *, actor: Any, reservation_ids: list[int], status: str, reason: str, only_expired: bool = False
) -> list[Reservation]:
    """Release active reservations (lock, mark closed, give stock back). Caller owns the transaction."""
    now = timezone.now()
    closed = []
    changes = []
    for reservation in reservations_lock(ids=reservation_ids):
        if reservation.status != ReservationStatus.ACTIVE:
            continue
        if only_expired and (reservation.expires_at is None or reservation.expires_at > now):
            continue
        reservation.status = status
        reservation.closed_at = now
        closed.append(reservation)
        changes.append(
            LevelChange(reservation.location_id, reservation.variant_id, {"reserved": -reservation.quantity})
        )
    if closed:
        Reservation.objects.bulk_update(closed, ["status", "closed_at"])
        # Levels are locked in (location, variant) order, the engine's one lock order; reservation
        # pk order would let a batch of expiries deadlock with a multi-level operation.
        in_lock_order = sorted(
            zip(closed, changes, strict=True), key=lambda pair: (pair[1].location_id, pair[1].variant_id, pair[0].pk)
        )
        for reservation, change in in_lock_order:
            _apply(
                key=f"{reason}:reservation:{reservation.pk}",
                changes=[change],
                reason=reason,
                actor=actor,
                reference=Reference("reservation", str(reservation.pk)),
            )
    return closed


def stock_release(*, actor: Any, reservation_id: int) -> Reservation:
    """Give a held quantity back. Releasing an already released hold is a no-op; a committed one is an error."""
    with transaction.atomic():
        reservation = next(iter(reservations_lock(ids=[reservation_id])), None)
        if reservation is None:
            raise ReservationClosedError(reservation_id, "gone")
        if reservation.status == ReservationStatus.COMMITTED:
            raise ReservationClosedError(reservation_id, reservation.status)
        if reservation.status == ReservationStatus.ACTIVE:
            _close_reservations(
                actor=actor,
                reservation_ids=[reservation_id],
                status=ReservationStatus.RELEASED,
                reason=MovementReason.RELEASE,
            )
            reservation.refresh_from_db()
        return reservation


def reservations_expire(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Release every active reservation past its expiry (Celery beat). Returns how many expired."""
    now = now or timezone.now()
    actor = SystemActor("reservation-expiry")
    total = 0
    while True:
        ids = list(
            Reservation.objects.filter(status=ReservationStatus.ACTIVE, expires_at__lte=now)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        with transaction.atomic():
            total += len(
                _close_reservations(
                    actor=actor,
                    reservation_ids=ids,
                    status=ReservationStatus.EXPIRED,
                    reason=MovementReason.EXPIRY,
                    only_expired=True,
                )
            )


def stock_commit(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    reservation_id: int | None = None,
    reference: Reference = NO_REFERENCE,
    idempotency_key: str | None = None,
) -> StockOperation:
    """Promise units to an order: from a reservation (converted) or straight from available."""
    _check_quantity(quantity)
    key = idempotency_key or _new_key("commit")
    existing = _existing_operation(key) if idempotency_key is not None else None
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            deltas = {"committed": quantity}
            guard = Guard.AVAILABLE
            if reservation_id is not None:
                reservation = next(iter(reservations_lock(ids=[reservation_id])), None)
                if reservation is None or reservation.status != ReservationStatus.ACTIVE:
                    raise ReservationClosedError(reservation_id, reservation.status if reservation else "gone")
                if (reservation.location_id, reservation.variant_id) != (location_id, variant_id) or (
                    reservation.quantity != quantity
                ):
                    raise InvalidQuantityError("The hold does not match the line being committed.")
                reservation.status = ReservationStatus.COMMITTED
                reservation.closed_at = timezone.now()
                reservation.save(update_fields=["status", "closed_at"])
                deltas["reserved"] = -quantity
                guard = Guard.NONE  # units move from reserved to committed: available is unchanged
            return _apply(
                key=key,
                changes=[LevelChange(location_id, variant_id, deltas, guard)],
                reason=MovementReason.COMMIT,
                actor=actor,
                reference=reference,
            )
    except IntegrityError:
        existing = _existing_operation(key)
        if existing is None:
            raise
        return existing


def stock_uncommit(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    reference: Reference = NO_REFERENCE,
    idempotency_key: str | None = None,
) -> StockOperation:
    """An order line was cancelled before it left: its committed units become available again."""
    _check_quantity(quantity)
    return _run(
        key=idempotency_key or _new_key("uncommit"),
        check_replay=idempotency_key is not None,
        changes=[LevelChange(location_id, variant_id, {"committed": -quantity})],
        reason=MovementReason.CANCEL,
        actor=actor,
        reference=reference,
    )


def stock_fulfil(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    reference: Reference = NO_REFERENCE,
    idempotency_key: str | None = None,
) -> StockOperation:
    """Committed units left the building (shipped or handed over): committed and on hand shrink."""
    _check_quantity(quantity)
    return _run(
        key=idempotency_key or _new_key("fulfil"),
        check_replay=idempotency_key is not None,
        changes=[LevelChange(location_id, variant_id, {"committed": -quantity, "on_hand": -quantity})],
        reason=MovementReason.FULFIL,
        actor=actor,
        reference=reference,
    )


def stock_sell_now(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    reference: Reference = NO_REFERENCE,
    idempotency_key: str | None = None,
) -> StockOperation:
    """A take-now sale: the customer holds the item, so the sale is never blocked by the record.

    Units come out of on hand. When the record says fewer are free than are being sold, the
    shortfall is first recorded as a "found stock" adjustment and the level is flagged for a count.
    Locks the level first so the shortfall is computed on the figure being replaced.
    """
    _check_quantity(quantity)
    key = idempotency_key or _new_key("sale")
    existing = _existing_operation(key) if idempotency_key is not None else None
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            level = stock_levels_lock(pairs=[(location_id, variant_id)]).get((location_id, variant_id))
            free = level.free_to_sell if level else 0
            shortfall = max(0, quantity - free)
            changes = []
            if shortfall:
                found = _apply(
                    key=f"{key}:found",
                    changes=[LevelChange(location_id, variant_id, {"on_hand": shortfall})],
                    reason=MovementReason.FOUND_STOCK,
                    reason_code="sold-while-not-on-record",
                    actor=actor,
                    reference=reference,
                )
                StockLevel.objects.filter(location_id=location_id, variant_id=variant_id).update(needs_count=True)
            changes.append(LevelChange(location_id, variant_id, {"on_hand": -quantity}, Guard.FREE))
            operation = _apply(key=key, changes=changes, reason=MovementReason.SALE, actor=actor, reference=reference)
            if shortfall:
                operation.movements = found.movements + operation.movements
            return operation
    except IntegrityError:
        existing = _existing_operation(key)
        if existing is None:
            raise
        return existing


def stock_return(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    damaged: bool = False,
    reference: Reference = NO_REFERENCE,
    idempotency_key: str | None = None,
) -> StockOperation:
    """A customer return lands at this location: back on hand, or on hand but unavailable if damaged."""
    _check_quantity(quantity)
    deltas = {"on_hand": quantity, "unavailable": quantity if damaged else 0}
    return _run(
        key=idempotency_key or _new_key("return"),
        check_replay=idempotency_key is not None,
        changes=[LevelChange(location_id, variant_id, deltas)],
        reason=MovementReason.RETURN,
        reason_code="damaged" if damaged else "restock",
        actor=actor,
        reference=reference,
    )


def stock_expect(
    *,
    actor: Any,
    location_id: int,
    variant_id: int,
    quantity: int,
    reference: Reference = NO_REFERENCE,
    idempotency_key: str | None = None,
) -> StockOperation:
    """Units are on their way here (a transfer dispatched, a purchase order): incoming grows."""
    _check_quantity(quantity)
    return _run(
        key=idempotency_key or _new_key("expect"),
        check_replay=idempotency_key is not None,
        changes=[LevelChange(location_id, variant_id, {"incoming": quantity})],
        reason=MovementReason.INCOMING,
        actor=actor,
        reference=reference,
    )


def stock_apply(
    *,
    actor: Any,
    changes: Sequence[LevelChange],
    reason: str,
    reference: Reference = NO_REFERENCE,
    reason_code: str = "",
    note: str = "",
    idempotency_key: str | None = None,
) -> StockOperation:
    """Several level changes as one atomic, idempotent operation (transfers, multi-line orders).

    For documents above inventory (orders, transfers) that move stock at several levels at once.
    Each change carries its guard. Deltas must name known states.
    """
    for change in changes:
        unknown = set(change.deltas) - set(STOCK_STATES)
        if unknown:
            raise ValueError(f"Unknown stock states: {sorted(unknown)}")
        if isinstance(change.location_id, bool) or not change.nonzero():
            raise InvalidQuantityError("Every change must move some stock.")
    if reason not in MovementReason.values:
        raise ValueError(f"Unknown movement reason: {reason}")
    return _run(
        key=idempotency_key or _new_key(reason),
        check_replay=idempotency_key is not None,
        changes=changes,
        reason=reason,
        actor=actor,
        reference=reference,
        reason_code=reason_code,
        note=note,
    )


def ledger_backdate(*, movements: QuerySet[StockMovement], created_at: datetime) -> int:
    """Date these movements to `created_at`: for simulated history only (the demo's past days,
    tests of time windows), since the services stamp movements with the time they ran. Nothing
    else about a movement can change: the database refuses any other update (migration 0006).
    Returns how many movements."""
    if connection.vendor != "postgresql":  # SQLite's trigger leaves created_at alone
        return movements.update(created_at=created_at)
    with transaction.atomic(), connection.cursor() as cursor:
        # Transaction-local, and switched off again: a caller's own transaction keeps no licence.
        cursor.execute("SELECT set_config('omni.backdate_ledger', 'on', true)")
        count = movements.update(created_at=created_at)
        cursor.execute("SELECT set_config('omni.backdate_ledger', 'off', true)")
        return count


def stock_opening_balance_bulk(
    *, actor: Any, rows: Iterable[tuple[int, int, int]], key_prefix: str, batch_size: int = 5000
) -> int:
    """Load opening stock for many (location_id, variant_id, on_hand) rows at once (demo data, imports).

    Writes the receipt movements and the levels in bulk, idempotently per row key. Only for levels
    that do not exist yet (an opening balance); existing levels are skipped. Returns rows loaded.
    """
    actor_fields = _actor_fields(actor)
    loaded = 0
    batch: list[tuple[int, int, int]] = []

    def flush() -> int:
        if not batch:
            return 0
        with transaction.atomic():
            existing = set(
                StockLevel.objects.filter(
                    location_id__in={loc for loc, _, _ in batch}, variant_id__in={var for _, var, _ in batch}
                ).values_list("location_id", "variant_id")
            )
            fresh = [(loc, var, qty) for loc, var, qty in batch if (loc, var) not in existing and qty > 0]
            StockLevel.objects.bulk_create(
                [StockLevel(location_id=loc, variant_id=var, on_hand=qty) for loc, var, qty in fresh],
                batch_size=batch_size,
            )
            StockMovement.objects.bulk_create(
                [
                    StockMovement(
                        location_id=loc,
                        variant_id=var,
                        state=StockState.ON_HAND,
                        quantity=qty,
                        reason=MovementReason.RECEIPT,
                        reason_code="opening-balance",
                        operation_key=f"{key_prefix}:{loc}:{var}",
                        idempotency_key=f"{key_prefix}:{loc}:{var}|{loc}|{var}|on_hand",
                        **actor_fields,
                    )
                    for loc, var, qty in fresh
                ],
                batch_size=batch_size,
            )
        return len(fresh)

    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            loaded += flush()
            batch = []
    loaded += flush()
    return loaded


# --- Catalogue -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantData:
    """A variant as an outside catalogue (the online store) describes it."""

    sku: str
    size: str
    colour: str
    price: Decimal
    barcode: str | None = None
    online_variant_id: int | None = None
    online_inventory_item_id: int | None = None


@dataclass
class CatalogueUpsertResult:
    product: Product
    created: list[Variant] = field(default_factory=list)
    updated: list[Variant] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why each unusable variant was left out


def catalogue_upsert_product(
    *,
    actor: Any,
    online_product_id: int,
    style: str,
    name: str,
    brand: str,
    category: str,
    is_active: bool,
    variants: Sequence[VariantData],
) -> CatalogueUpsertResult:
    """Create or update a product and its variants from the online store's catalogue.

    The product is matched by online id, then by style, then as the product its variants already
    belong to; each variant by inventory item id, then by SKU (never by title). A variant with
    neither a known item id nor a SKU, or whose SKU belongs to another product, is skipped with a
    reason. An invalid barcode is dropped, not trusted.
    """
    _actor_fields(actor)
    with transaction.atomic():
        item_ids = [v.online_inventory_item_id for v in variants if v.online_inventory_item_id]
        skus = [v.sku for v in variants if v.sku]
        known = list(
            Variant.objects.select_for_update().filter(Q(online_inventory_item_id__in=item_ids) | Q(sku__in=skus))
        )
        by_item = {v.online_inventory_item_id: v for v in known if v.online_inventory_item_id}
        by_sku = {v.sku: v for v in known}
        # The product: by online id, then style, then the product its known variants already belong to.
        product = (
            Product.objects.select_for_update().filter(online_product_id=online_product_id).first()
            or Product.objects.select_for_update().filter(style=style).first()
            or (Product.objects.select_for_update().filter(pk=known[0].product_id).first() if known else None)
        )
        if product is None:
            product = Product(style=style)
        product.online_product_id = online_product_id
        product.name = name[:200]
        product.brand = brand[:100]
        product.category = category[:50]
        product.is_active = is_active
        product.save()
        result = CatalogueUpsertResult(product=product)
        for data in variants:
            variant = by_item.get(data.online_inventory_item_id or 0) or by_sku.get(data.sku)
            if variant is None and not data.sku:
                result.skipped.append(f"variant {data.online_variant_id}: no SKU and unknown inventory item")
                continue
            if variant is not None and variant.product_id != product.pk:
                result.skipped.append(f"SKU {variant.sku}: belongs to another product ({variant.product_id})")
                continue
            barcode = data.barcode if data.barcode and is_valid_gtin(data.barcode) else None
            if data.barcode and barcode is None:
                result.skipped.append(f"SKU {data.sku}: barcode {data.barcode} is not a valid GTIN (dropped)")
            others = Variant.objects.filter(barcode=barcode)
            if variant is not None:
                others = others.exclude(pk=variant.pk)
            if barcode and others.exists():
                result.skipped.append(f"SKU {data.sku}: barcode {barcode} belongs to another variant (dropped)")
                barcode = None
            fields = {
                "size": data.size[:20] or "One size",
                "colour": data.colour[:40],
                "price": data.price,
                "online_variant_id": data.online_variant_id,
                "online_inventory_item_id": data.online_inventory_item_id,
            }
            if variant is None:
                variant = Variant.objects.create(product=product, sku=data.sku, barcode=barcode, **fields)
                result.created.append(variant)
                continue
            for name_, value in fields.items():
                setattr(variant, name_, value)
            if barcode:
                variant.barcode = barcode
            if data.sku and variant.sku != data.sku:
                variant.sku = data.sku
            variant.save()
            result.updated.append(variant)
        return result


# --- Orders: many lines in one fixed-cost operation --------------------------------------------


@dataclass(frozen=True)
class OrderStockLine:
    """One line of an order's stock effect.

    `action` is "commit" (promise units to the order: converted from `reservation_id` when given,
    else taken from available) or "sell" (a take-now sale: out of on hand, never blocked, a
    shortfall first recorded as found stock and the level flagged for a count, as stock_sell_now).
    """

    location_id: int
    variant_id: int
    quantity: int
    action: str
    reservation_id: int | None = None


def stock_order_place(
    *,
    actor: Any,
    lines: Sequence[OrderStockLine],
    reference: Reference = NO_REFERENCE,
    idempotency_key: str,
    savepoint: bool = True,
    check_existing: bool = True,
) -> StockOperation:
    """Commit and sell every line of an order in one atomic operation whose query count does not
    depend on the number of lines (placing an order must be fast and its cost pinned).

    The same guarantees as the single-line operations (stock_commit, stock_sell_now):
    - reservations are locked (pk order) and must be active and match their line exactly;
    - a commit without a reservation needs that many available units (never safety stock);
    - a sale is never blocked: a shortfall becomes a found-stock movement and flags a count;
    - movements are written for every state change; a repeated key returns the first result.

    How: lock the reservations, lock every level touched (ordered by location, then variant, the
    order `_apply` updates in, so concurrent operations queue instead of deadlocking), check the
    key under those locks, compute the new figures from the locked rows, then write the movements,
    the reservations and the levels in one bulk statement each. Inside a caller's transaction it
    takes a savepoint, so the caller may go on after an error; `savepoint=False` saves those two
    queries for a caller whose transaction rolls back as a whole anyway (placing an order), and
    `check_existing=False` the key check for a caller whose own unique key already rules out a
    repeat in the same transaction (a repeat would then fail loudly on the movements' unique key).

    Raises InsufficientStockError naming the first level short of stock (nothing is written).
    Database check constraints back every figure.
    """
    if not lines:
        return StockOperation(key=idempotency_key)
    for line in lines:
        _check_quantity(line.quantity)
        if line.action not in ("commit", "sell"):
            raise ValueError(f"Unknown order stock action: {line.action}")
        if line.action == "sell" and line.reservation_id is not None:
            raise ValueError("A take-now sale does not convert a reservation.")
    actor_fields = _actor_fields(actor)
    now = timezone.now()
    with transaction.atomic(savepoint=savepoint):
        reservation_ids = sorted({line.reservation_id for line in lines if line.reservation_id is not None})
        if len(reservation_ids) != sum(1 for line in lines if line.reservation_id is not None):
            raise InvalidQuantityError("Each hold can be converted by one line only.")
        reservations = {r.pk: r for r in reservations_lock(ids=reservation_ids)} if reservation_ids else {}
        for line in lines:
            if line.reservation_id is None:
                continue
            reservation = reservations.get(line.reservation_id)
            if reservation is None or reservation.status != ReservationStatus.ACTIVE:
                # A concurrent duplicate (same key) converted it while we waited for the lock.
                existing = _existing_operation(idempotency_key)
                if existing is not None:
                    return existing
                raise ReservationClosedError(line.reservation_id, reservation.status if reservation else "gone")
            if (reservation.location_id, reservation.variant_id, reservation.quantity) != (
                line.location_id,
                line.variant_id,
                line.quantity,
            ):
                raise InvalidQuantityError("The hold does not match the line being committed.")

        pairs = sorted({(line.location_id, line.variant_id) for line in lines})
        levels = _order_levels_lock(pairs)
        # Checked under the level locks: a concurrent duplicate of this key waited for them and now
        # sees the first one's movements (so no savepoint is needed around the inserts below).
        existing = _existing_operation(idempotency_key) if check_existing else None
        if existing is not None:
            return existing
        missing_sales = [
            pair
            for pair in pairs
            if pair not in levels
            and any((line.location_id, line.variant_id) == pair and line.action == "sell" for line in lines)
        ]
        if missing_sales:
            # A take-now sale of something never recorded here: the level starts at zero.
            StockLevel.objects.bulk_create(
                [StockLevel(location_id=loc, variant_id=var) for loc, var in missing_sales], ignore_conflicts=True
            )
            levels = _order_levels_lock(pairs)

        # Per level, in order: conversions, then commits from available, then sales.
        deltas: dict[tuple[int, int], dict[str, int]] = {pair: {} for pair in pairs}
        found: dict[tuple[int, int], int] = {}
        for pair in pairs:
            level = levels.get(pair)
            at_level = [line for line in lines if (line.location_id, line.variant_id) == pair]
            converted = sum(line.quantity for line in at_level if line.reservation_id is not None)
            direct = sum(line.quantity for line in at_level if line.action == "commit" and line.reservation_id is None)
            sold = sum(line.quantity for line in at_level if line.action == "sell")
            if level is None:
                raise _shortage_error(LevelChange(pair[0], pair[1], {"committed": converted + direct}, Guard.AVAILABLE))
            if direct and level.available < direct:
                raise _shortage_error(LevelChange(pair[0], pair[1], {"committed": direct}, Guard.AVAILABLE))
            level.reserved -= converted
            level.committed += converted + direct
            if sold:
                free = level.free_to_sell
                shortfall = max(0, sold - free)
                if shortfall:
                    found[pair] = shortfall
                    level.needs_count = True
                level.on_hand += shortfall - sold
            deltas[pair] = {"reserved": -converted, "committed": converted + direct, "on_hand": -sold}
            level.updated_at = now

        def movement(pair: tuple[int, int], state: str, quantity: int, reason: str, key: str) -> StockMovement:
            return StockMovement(
                location_id=pair[0],
                variant_id=pair[1],
                state=state,
                quantity=quantity,
                reason=reason,
                reason_code="sold-while-not-on-record" if reason == MovementReason.FOUND_STOCK else "",
                reference_type=reference.type,
                reference_id=reference.id,
                operation_key=key,
                idempotency_key=f"{key}|{pair[0]}|{pair[1]}|{state}",
                **actor_fields,
            )

        movements = [
            movement(pair, StockState.ON_HAND, shortfall, MovementReason.FOUND_STOCK, f"{idempotency_key}:found")
            for pair, shortfall in found.items()
        ]
        for pair in pairs:
            for state in ("reserved", "committed", "on_hand"):
                quantity = deltas[pair].get(state, 0)
                if quantity:
                    reason = MovementReason.SALE if state == "on_hand" else MovementReason.COMMIT
                    movements.append(movement(pair, state, quantity, reason, idempotency_key))
        StockMovement.objects.bulk_create(movements)
        if reservations:
            for reservation in reservations.values():
                reservation.status = ReservationStatus.COMMITTED
                reservation.closed_at = now
            Reservation.objects.bulk_update(list(reservations.values()), ["status", "closed_at"])
        _levels_write([levels[pair] for pair in pairs], now)
        live_publish(topic="stock", payload={"levels": pairs, "reason": "order"})
        found_movements = [m for m in movements if m.operation_key.endswith(":found")]
        return StockOperation(
            key=idempotency_key,
            movements=found_movements + [m for m in movements if not m.operation_key.endswith(":found")],
        )


def _levels_write(levels: list[StockLevel], now: datetime) -> None:
    """Write the on hand, committed, reserved and needs-count figures of locked levels in one
    statement. Caller holds the rows' locks (the figures were computed from them).

    `UPDATE ... FROM (VALUES ...)` rather than bulk_update: Django builds a CASE expression per
    field and row, which costs more than the rest of placing an order. Works on PostgreSQL and
    SQLite (3.33+); only the table and column names are interpolated.
    """
    table = connection.ops.quote_name(StockLevel._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(levels))
    params: list[Any] = []
    for level in levels:
        params += [level.pk, level.on_hand, level.committed, level.reserved, level.needs_count]
    sql = (
        f"WITH v(id, on_hand, committed, reserved, needs_count) AS (VALUES {rows}) "  # noqa: S608
        f"UPDATE {table} SET on_hand = v.on_hand, committed = v.committed, reserved = v.reserved, "
        f"needs_count = v.needs_count, updated_at = %s FROM v WHERE {table}.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, now])
        # SQLite's driver reports -1 for a statement that starts with WITH.
        if cursor.rowcount not in (-1, len(levels)):
            raise RuntimeError("A locked stock level could not be written.")


def _order_levels_lock(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], StockLevel]:
    """Lock levels of (location_id, variant_id) pairs in (location, variant) order, `_apply`'s order.

    One query whatever the number of pairs. Caller must be inside transaction.atomic.
    """
    condition = Q()
    for location_id, variant_id in pairs:
        condition |= Q(location_id=location_id, variant_id=variant_id)
    levels = StockLevel.objects.select_for_update(of=("self",)).filter(condition).order_by("location_id", "variant_id")
    return {(level.location_id, level.variant_id): level for level in levels}
