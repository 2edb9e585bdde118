"""Demo data for transfers: a replenishment policy per store, planner settings, and a handful of
manual transfers in every state so each screen has something to show.

Called by `manage.py seed_demo` (docs/DEMO_DATA.md) after inventory and staff, BEFORE the sales
history exists (orders seed it later): so the planners are not run here. They run on their beat
schedules (daily replenishment, weekly rebalancing), or at once from the dashboard's "Plan now"
(admins) or `manage.py plan_transfers`.

Idempotent: policies are keyed by store, demo transfers by `demo-transfer:<n>`; a transfer already
past a step is not moved again. Stock moves only through transfers.services (so the ledger still
sums to the levels), acted by the demo accounts (warehouse, associate, manager) when they exist.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.utils import timezone

from inventory import demo as inventory_demo
from inventory.models import Location, LocationKind, MovementReason, StockLevel, StockMovement
from inventory.services import SystemActor, ledger_backdate
from omni.models import User

from . import services
from .models import (
    PlannerSettings,
    PolicyOverride,
    ReplenishmentPolicy,
    Transfer,
    TransferEvent,
    TransferEventKind,
    TransferStatus,
)

DEMO_ACTOR = SystemActor("demo-data")


class Writer(Protocol):
    def write(self, msg: str, /) -> Any: ...


def seed_policies(*, stores: list[Location]) -> int:
    """A policy per store: flagships (which also ship) keep 21 days of cover, the others 14."""
    existing = set(ReplenishmentPolicy.objects.filter(location__in=stores).values_list("location_id", flat=True))
    fresh = [
        ReplenishmentPolicy(
            location=store,
            target_days_of_cover=Decimal("21") if store.ships_to_customers else Decimal("14"),
            min_display_quantity=0,
            auto_approve_max_units=150,
            auto_approve_max_value=Decimal("10000"),
        )
        for store in stores
        if store.pk not in existing
    ]
    ReplenishmentPolicy.objects.bulk_create(fresh)
    # Accessories sit by the till: always show two, and keep three weeks of them.
    policies = ReplenishmentPolicy.objects.filter(location__in=stores).exclude(overrides__category="accessories")
    PolicyOverride.objects.bulk_create(
        [
            PolicyOverride(
                policy=policy, category="accessories", target_days_of_cover=Decimal("21"), min_display_quantity=2
            )
            for policy in policies.order_by("location__code")
        ]
    )
    if not PlannerSettings.objects.exists():
        PlannerSettings.objects.create()
    return len(fresh)


def _user(username: str) -> Any:
    return User.objects.filter(username=username).first() or DEMO_ACTOR


def _lines(origin: Location, rng: random.Random, count: int, exclude: set[int]) -> list[tuple[int, int]]:
    """`count` variants with at least 4 available at the origin (drawn in sku order), 1-3 units each."""
    candidates = list(
        StockLevel.objects.filter(location=origin, available__gte=4)
        .exclude(variant_id__in=exclude)
        .order_by("variant__sku")
        .values_list("variant_id", "available")[:400]
    )
    if len(candidates) < count:
        return []
    chosen = rng.sample(candidates, count)
    return [(variant_id, min(available - 2, rng.randint(1, 3))) for variant_id, available in chosen]


# (n, origin, destination, target state, reason). Codes resolve against the seeded network.
PLAN = (
    (1, "warehouse", "first", "received", "New season window display"),
    (2, "second", "first", "discrepancy", "Customer asked for sizes Austin did not have"),
    (3, "warehouse", "first", "in_transit", "Weekend event stock"),
    (4, "warehouse", "first", "approved", "Restock best sellers"),
    (5, "first", "second", "approved", "Send back slow movers"),
    (6, "warehouse", "district", "proposed", "Opening of a new fixture"),
)


def seed_transfers(*, rng: random.Random, network: dict[str, Location | None]) -> tuple[int, int]:
    """The demo transfers, walked to their target state. Returns (created, moved on)."""
    created = moved = 0
    used: set[int] = set()
    # Created on the first run only: later runs find other apps' sales in between and must not
    # create what the first run skipped (the contract: a second run writes nothing).
    first_run = not Transfer.objects.filter(idempotency_key__startswith="demo-transfer:").exists()
    warehouse, manager, associate = _user("warehouse"), _user("manager"), _user("associate")
    for number, origin_key, destination_key, target, reason in PLAN:
        origin, destination = network.get(origin_key), network.get(destination_key)
        if origin is None or destination is None or origin == destination:
            continue
        key = f"demo-transfer:{number}"
        transfer = Transfer.objects.filter(idempotency_key=key).first()
        if transfer is None and not first_run:
            continue
        if transfer is None:
            lines = _lines(origin, rng, 3 if number != 6 else 5, used)
            if not lines:
                continue
            transfer = services.transfer_create(
                actor=manager,
                origin_id=origin.pk,
                destination_id=destination.pk,
                lines=lines,
                reason=reason,
                idempotency_key=key,
            )
            created += 1
        used.update(transfer.lines.values_list("variant_id", flat=True))
        picker = warehouse if origin.kind == LocationKind.WAREHOUSE else associate
        receiver = associate if destination == network.get("first") else DEMO_ACTOR
        steps = ["approved", "in_transit", "received"] if target in ("received", "discrepancy") else []
        steps = {"approved": ["approved"], "in_transit": ["approved", "in_transit"]}.get(target, steps)
        for step in steps:
            transfer.refresh_from_db()
            if step == "approved" and transfer.status == TransferStatus.PROPOSED:
                services.transfer_approve(actor=manager, transfer_id=transfer.pk)
                moved += 1
            elif step == "in_transit" and transfer.status in (TransferStatus.APPROVED, TransferStatus.PICKING):
                planned = {line.pk: line.quantity for line in transfer.lines.order_by("pk")}
                services.transfer_dispatch(actor=picker, transfer_id=transfer.pk, quantities=planned)
                moved += 1
            elif step == "received" and transfer.status == TransferStatus.IN_TRANSIT:
                counts = {line.pk: line.expected for line in transfer.lines.order_by("pk")}
                if target == "discrepancy":
                    first = min(counts)
                    counts[first] = max(0, counts[first] - 1)
                services.transfer_receive(actor=receiver, transfer_id=transfer.pk, counts=counts)
                moved += 1
        if first_run:
            _spread_over_days(transfer, rng)
    return created, moved


def _spread_over_days(transfer: Transfer, rng: random.Random) -> None:
    """Date a demo transfer's steps over the days before now, as a real one would take (the
    services stamp them with the time they ran: every demo transfer was created, approved,
    dispatched and received within a second, and the dashboard read a lead time of 0.0 h)."""
    transfer.refresh_from_db()
    created = timezone.now() - timedelta(days=rng.uniform(4, 20))
    approved = created + timedelta(hours=rng.uniform(0.5, 4))
    dispatched = approved + timedelta(hours=rng.uniform(4, 20))
    received = dispatched + timedelta(hours=rng.uniform(18, 50))
    steps = {
        "created_at": created,
        "approved_at": approved if transfer.approved_at else None,
        "dispatched_at": dispatched if transfer.dispatched_at else None,
        "received_at": received if transfer.received_at else None,
    }
    Transfer.objects.filter(pk=transfer.pk).update(**steps)
    at_kind = {
        TransferEventKind.CREATED: created,
        TransferEventKind.APPROVED: approved,
        TransferEventKind.DISPATCHED: dispatched,
        TransferEventKind.RECEIVED: received,
        TransferEventKind.DISCREPANCY: received,
    }
    for kind, moment in at_kind.items():
        TransferEvent.objects.filter(transfer=transfer, kind=kind).update(created_at=moment)
    movements = StockMovement.objects.filter(reference_type="transfer", reference_id=transfer.code)
    ledger_backdate(movements=movements.filter(reason=MovementReason.TRANSFER_OUT), created_at=dispatched)
    ledger_backdate(movements=movements.filter(reason=MovementReason.TRANSFER_IN), created_at=received)


def seed(options: Mapping[str, Any], rng: random.Random, stdout: Writer) -> None:
    verbose = options.get("verbosity", 1) >= 1

    def say(message: str) -> None:
        if verbose:
            stdout.write(f"  transfers: {message}")

    stores = int(options.get("stores") or inventory_demo.DEFAULT_STORES)
    codes = inventory_demo.store_codes(stores)
    by_code = Location.objects.in_bulk([inventory_demo.WAREHOUSE_CODE, *codes], field_name="code")
    store_list = [by_code[code] for code in codes if code in by_code]
    if not store_list:
        say("no demo stores: seed inventory first")
        return
    policies = seed_policies(stores=store_list)
    manager = User.objects.filter(username="manager").first()
    district = [
        location
        for location in (manager.extra_locations.order_by("code") if manager else [])
        if location.code != inventory_demo.FIRST_STORE_CODE
    ]
    network: dict[str, Location | None] = {
        "warehouse": by_code.get(inventory_demo.WAREHOUSE_CODE),
        "first": by_code.get(inventory_demo.FIRST_STORE_CODE),
        "second": store_list[1] if len(store_list) > 1 else None,
        "district": district[0] if district else (store_list[1] if len(store_list) > 1 else None),
    }
    created, moved = seed_transfers(rng=rng, network=network)
    if policies or created or moved:
        say(f"{policies} store policies, {created} demo transfers ({moved} steps taken); planners run on schedule")
    else:
        say("already seeded")
