"""Where each line's units come from: the sourcing rules, in one place, easy to read and to change.

Pure functions over `Candidate`s (one per location holding the variant, fetched in one query by
orders.selectors.sourcing_candidates). `available` there already excludes safety stock, committed,
reserved and unavailable units, so these rules never take safety stock.

Ship to customer
    1. Only active locations that ship to customers (warehouses and stores that ship).
    2. Warehouses first, then stores.
    3. Within each, prefer a source the order already ships from (fewest shipments), then the
       nearest to the selling store.
    4. Split the line over several sources only when no single source has enough; the split takes
       the biggest stock first (fewest parts), in the same preference order.

Collect in store (at pickup location P)
    1. P itself when it has enough.
    2. Otherwise the nearest other location that can send transfers and has enough (a transfer
       brings the units to P).
    3. Split only when no single location has enough: P's stock first, then the nearest others.

Estimated dates come from `eta_days`: shipping takes OMNI_SHIP_DAYS_WAREHOUSE (2) from a
warehouse, OMNI_SHIP_DAYS_STORE (3) from a store; collecting is same day at P, or
OMNI_TRANSFER_DAYS (2) when a transfer has to bring the stock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings

WAREHOUSE = "warehouse"


@dataclass(frozen=True)
class Candidate:
    location_id: int
    code: str
    name: str
    kind: str  # "store" or "warehouse"
    available: int
    ships_to_customers: bool = False
    sends_transfers: bool = True
    offers_pickup: bool = False
    distance_km: float = 0.0

    @property
    def is_warehouse(self) -> bool:
        return self.kind == WAREHOUSE


@dataclass(frozen=True)
class Allocation:
    """`quantity` units from `location_id`, reaching the customer in `eta_days`."""

    location_id: int
    quantity: int
    eta_days: int
    needs_transfer: bool = False


@dataclass
class Plan:
    allocations: list[Allocation] = field(default_factory=list)
    shortfall: int = 0  # units no source could give

    @property
    def complete(self) -> bool:
        return self.shortfall == 0 and bool(self.allocations)


# --- Distances and delays -------------------------------------------------------------------------


def distance_km(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float:
    """Great-circle distance; unknown coordinates count as far away (but comparable)."""
    if a is None or b is None:
        return 10_000.0
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(h)))


def eta_days(*, kind: str, source: Candidate | None = None, same_store: bool = False) -> int:
    if kind == "take_now":
        return 0
    if kind == "collect":
        return 0 if same_store else int(getattr(settings, "OMNI_TRANSFER_DAYS", 2))
    if source is not None and source.is_warehouse:
        return int(getattr(settings, "OMNI_SHIP_DAYS_WAREHOUSE", 2))
    return int(getattr(settings, "OMNI_SHIP_DAYS_STORE", 3))


# --- Ship -----------------------------------------------------------------------------------------


def _ship_preference(candidate: Candidate, already_used: frozenset[int]) -> tuple[bool, bool, float, str]:
    return (
        not candidate.is_warehouse,
        candidate.location_id not in already_used,
        candidate.distance_km,
        candidate.code,
    )


def source_ship(candidates: Iterable[Candidate], quantity: int, *, already_used: Iterable[int] = ()) -> Plan:
    """Plan a ship line of `quantity` units (rules above)."""
    used = frozenset(already_used)
    eligible = sorted(
        (c for c in candidates if c.ships_to_customers and c.available > 0),
        key=lambda c: _ship_preference(c, used),
    )
    single = next((c for c in eligible if c.available >= quantity), None)
    if single is not None:
        return Plan([Allocation(single.location_id, quantity, eta_days(kind="ship", source=single))])
    # No single source has enough: take the biggest stocks first, ties in preference order.
    by_size = sorted(eligible, key=lambda c: (-c.available, _ship_preference(c, used)))
    return _fill(by_size, quantity, lambda c: eta_days(kind="ship", source=c), transfer=lambda c: False)


def source_ship_order(lines: Sequence[tuple[int, int]], candidates: dict[int, list[Candidate]]) -> list[Plan]:
    """Plan several ship lines of one order `[(variant_id, quantity), ...]` with the fewest shipments.

    Greedy set cover in preference order: among warehouses, then stores, take the source that can
    ship the most remaining lines whole (ties: nearest); repeat. Lines no single source can ship
    whole are then split by `source_ship`.
    """
    plans: list[Plan | None] = [None] * len(lines)
    used: list[int] = []
    remaining = set(range(len(lines)))
    for want_warehouse in (True, False):
        while remaining:
            coverage: dict[int, tuple[Candidate, list[int]]] = {}
            for index in remaining:
                variant_id, quantity = lines[index]
                for c in candidates.get(variant_id, []):
                    if c.ships_to_customers and c.is_warehouse == want_warehouse and c.available >= quantity:
                        coverage.setdefault(c.location_id, (c, []))[1].append(index)
            if not coverage:
                break
            best, covered = min(coverage.values(), key=lambda item: (-len(item[1]), item[0].distance_km, item[0].code))
            for index in covered:
                plans[index] = Plan([Allocation(best.location_id, lines[index][1], eta_days(kind="ship", source=best))])
            remaining -= set(covered)
            used.append(best.location_id)
    for index in sorted(remaining):
        variant_id, quantity = lines[index]
        plans[index] = source_ship(candidates.get(variant_id, []), quantity, already_used=used)
    return [plan or Plan(shortfall=lines[i][1]) for i, plan in enumerate(plans)]


# --- Collect --------------------------------------------------------------------------------------


def source_collect(candidates: Iterable[Candidate], quantity: int, *, pickup_location_id: int) -> Plan:
    """Plan a collect line of `quantity` units picked up at `pickup_location_id` (rules above)."""
    pool = [c for c in candidates if c.available > 0]
    here = next((c for c in pool if c.location_id == pickup_location_id), None)
    if here is not None and here.available >= quantity:
        return Plan([Allocation(here.location_id, quantity, eta_days(kind="collect", same_store=True))])
    others = sorted(
        (c for c in pool if c.location_id != pickup_location_id and c.sends_transfers),
        key=lambda c: (c.distance_km, c.code),
    )
    single = next((c for c in others if c.available >= quantity), None)
    if single is not None:
        return Plan([Allocation(single.location_id, quantity, eta_days(kind="collect"), needs_transfer=True)])
    ordered = ([here] if here is not None else []) + others
    return _fill(
        ordered,
        quantity,
        lambda c: eta_days(kind="collect", same_store=c.location_id == pickup_location_id),
        transfer=lambda c: c.location_id != pickup_location_id,
    )


def _fill(
    ordered: Sequence[Candidate],
    quantity: int,
    eta: Callable[[Candidate], int],
    transfer: Callable[[Candidate], bool],
) -> Plan:
    plan = Plan()
    left = quantity
    for c in ordered:
        if left == 0:
            break
        take = min(left, c.available)
        plan.allocations.append(Allocation(c.location_id, take, eta(c), needs_transfer=transfer(c)))
        left -= take
    plan.shortfall = left
    return plan


# --- Messages -------------------------------------------------------------------------------------


def where_else(candidates: Iterable[Candidate], *, exclude: Iterable[int] = (), limit: int = 4) -> str:
    """'Also at Austin Domain (2), Central Warehouse (5).' or 'Not available at any other location.'"""
    skip = set(exclude)
    others = sorted(
        (c for c in candidates if c.available > 0 and c.location_id not in skip),
        key=lambda c: (-c.available, c.distance_km, c.code),
    )
    if not others:
        return "Not available at any other location."
    listed = ", ".join(f"{c.name} ({c.available})" for c in others[:limit])
    more = f" and {len(others) - limit} more" if len(others) > limit else ""
    return f"Available at {listed}{more}."
