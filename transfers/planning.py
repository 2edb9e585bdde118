"""The planners' arithmetic: cover from the ledger in SQL, allocation in numpy, lines written in bulk.

Figures (`figures_sql`)
-----------------------
For every stock level of a store with an active policy:

    velocity  v = units sold (ledger: reason sale or fulfil, on hand, negative) in the last
                  `velocity_window_days`, per day
    position  p = available + incoming (not for orders) + open planned lines to it - proposed lines from it
    target    T = max(ceil(v * target days), display minimum)      (variant > category > store policy)
    need        = T - p                                             when > 0
    keep      K = max(ceil(v * excess cover days), display minimum, T)
    excess      = available - proposed lines from it - K            when > 0

One pass (velocity GROUP BY joined to every level) returns only the rows that need stock: a
million levels come back as the few thousand that matter. Rebalancing then asks a second,
narrower question: the rows with excess, only for the variants some store still needs after the
warehouse has given what it has (none, in the usual case of a stocked warehouse: no second pass).

Replenishment (numpy): needs are grouped by (source warehouse, variant), most urgent (least cover)
first; a running sum against the warehouse's available gives each store its share.

Rebalancing (numpy): per variant, donors (most excess first) and receivers that sell it (least
cover first) are laid end to end on one axis; the overlaps of their intervals are the moves.
Moves are grouped per (origin, destination); a pair ships only when its expected gain (units the
destination should sell within its target cover) reaches the minimum shipment size.

Lines are kept as columns (numpy arrays) from the query to the insert: the planners never build a
Python object per line; the `why` text and the inputs (JSON) are formatted once, as they are written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection

from inventory.models import Location, LocationKind, Product, StockLevel, StockMovement, Variant

from .models import (
    PlannerSettings,
    PlanRun,
    PolicyOverride,
    ReplenishmentPolicy,
    Transfer,
    TransferEvent,
    TransferEventKind,
    TransferLine,
    TransferSource,
    TransferStatus,
)

PLANNERS = ("replenishment", "rebalancing")
# A line "prevents a stock-out" when the store would run out within this many days without it.
STOCKOUT_HORIZON_DAYS = 7
SOURCES = {"replenishment": TransferSource.REPLENISHMENT, "rebalancing": TransferSource.REBALANCING}

# Columns of the figures query, in order.
COLUMNS = (
    "location_id",
    "variant_id",
    "available",
    "incoming",
    "pending_in",
    "pending_out",
    "sold",
    "target_days",
    "min_display",
    "replenish",
    "rebalance",
    "price",
)


def planner_settings() -> PlannerSettings:
    return PlannerSettings.objects.order_by("pk").first() or PlannerSettings()


def default_source_id() -> int | None:
    return (
        Location.objects.active()
        .filter(kind=LocationKind.WAREHOUSE, sends_transfers=True)
        .order_by("code")
        .values_list("pk", flat=True)
        .first()
    )


def _tables() -> dict[str, str]:
    return {
        "level": StockLevel._meta.db_table,
        "movement": StockMovement._meta.db_table,
        "variant": Variant._meta.db_table,
        "product": Product._meta.db_table,
        "transfer": Transfer._meta.db_table,
        "line": TransferLine._meta.db_table,
        "policy": ReplenishmentPolicy._meta.db_table,
        "override": PolicyOverride._meta.db_table,
        "location": Location._meta.db_table,
    }


def _ids(values: Sequence[int]) -> str:
    """Integers inlined into SQL (portable; never user text)."""
    return ", ".join(str(int(value)) for value in values)


def _velocity_cte(t: dict[str, str], variant_ids: Sequence[int] | None = None) -> str:
    only = f" AND m.variant_id IN ({_ids(variant_ids)})" if variant_ids is not None else ""
    return f"""
    sold AS (
        SELECT m.location_id, m.variant_id, -SUM(m.quantity) AS units
        FROM {t["movement"]} m
        WHERE m.state = 'on_hand' AND m.reason IN ('sale', 'fulfil') AND m.quantity < 0
          AND m.created_at >= %(since)s AND m.created_at < %(until)s{only}
        GROUP BY m.location_id, m.variant_id
    )"""  # noqa: S608 - table names come from model meta; values are parameters or integers


def figures_sql(
    *,
    location_ids: Sequence[int],
    with_overrides: bool,
    open_ids: Sequence[int] = (),
    donors_of: Sequence[int] | None = None,
) -> str:
    """The planners' pass over levels, ledger and open transfers (portable SQL).

    `location_ids`: the active stores with an active policy. Without `donors_of`: the rows that
    need stock. With `donors_of` (variant ids): the rows of those variants whose stock exceeds what
    their store keeps (rebalancing's donors). `open_ids`: the transfers not yet received (read
    first, so their lines are found by transfer id, and skipped altogether when there are none).
    Prices and inactive variants are handled by the caller on the few rows that come back.
    """
    t = _tables()
    override_joins = (
        f"""
        JOIN {t["variant"]} v ON v.id = s.variant_id
        JOIN {t["product"]} pr ON pr.id = v.product_id
        LEFT JOIN {t["override"]} ov ON ov.policy_id = p.id AND ov.variant_id = s.variant_id
        LEFT JOIN {t["override"]} oc ON oc.policy_id = p.id AND oc.variant_id IS NULL AND oc.category = pr.category"""
        if with_overrides
        else ""
    )
    target = (
        "COALESCE(ov.target_days_of_cover, oc.target_days_of_cover, p.target_days_of_cover)"
        if with_overrides
        else "p.target_days_of_cover"
    )
    display = (
        "COALESCE(ov.min_display_quantity, oc.min_display_quantity, p.min_display_quantity)"
        if with_overrides
        else "p.min_display_quantity"
    )
    if open_ids:
        pending_ctes = f""",
    pipe AS (
        SELECT tr.destination_id AS location_id, l.variant_id,
            SUM(CASE WHEN tr.status IN ('proposed', 'approved', 'picking') AND NOT l.for_order THEN l.quantity
                     WHEN tr.status = 'in_transit' AND l.for_order THEN -COALESCE(l.quantity_dispatched, 0)
                     ELSE 0 END) AS pending_in
        FROM {t["line"]} l JOIN {t["transfer"]} tr ON tr.id = l.transfer_id
        WHERE l.transfer_id IN ({_ids(open_ids)}) AND tr.status IN ('proposed', 'approved', 'picking', 'in_transit')
        GROUP BY tr.destination_id, l.variant_id
    ),
    outp AS (
        SELECT tr.origin_id AS location_id, l.variant_id, SUM(l.quantity) AS pending_out
        FROM {t["line"]} l JOIN {t["transfer"]} tr ON tr.id = l.transfer_id
        WHERE l.transfer_id IN ({_ids(open_ids)}) AND tr.status = 'proposed' AND NOT l.for_order
        GROUP BY tr.origin_id, l.variant_id
    )"""  # noqa: S608 - table names come from model meta; ids are integers
        pending_joins = """
        LEFT JOIN pipe ON pipe.location_id = s.location_id AND pipe.variant_id = s.variant_id
        LEFT JOIN outp ON outp.location_id = s.location_id AND outp.variant_id = s.variant_id"""
        pending_in, pending_out = "COALESCE(pipe.pending_in, 0)", "COALESCE(outp.pending_out, 0)"
    else:
        pending_ctes = pending_joins = ""
        pending_in = pending_out = "0"
    if donors_of is None:
        where = "f.position * %(window)s < f.sold * f.target_days OR f.position < f.min_display"
        only = ""
    else:
        where = """f.rebalance AND f.available - f.pending_out > f.min_display
            AND (f.available - f.pending_out) * %(window)s > f.sold * %(excess_days)s
            AND (f.available - f.pending_out) * %(window)s > f.sold * f.target_days"""
        only = f" AND s.variant_id IN ({_ids(donors_of)})"
    stores = _ids(location_ids) if location_ids else "NULL"
    return f"""
    WITH {_velocity_cte(t, donors_of)}{pending_ctes},
    fig AS (
        SELECT s.location_id, s.variant_id, s.available, s.incoming,
            {pending_in} AS pending_in,
            {pending_out} AS pending_out,
            s.available + s.incoming + {pending_in} - {pending_out} AS position,
            COALESCE(sold.units, 0) AS sold,
            CAST({target} AS DOUBLE PRECISION) AS target_days,
            {display} AS min_display,
            p.replenish, p.rebalance
        FROM {t["level"]} s
        JOIN {t["policy"]} p ON p.location_id = s.location_id{override_joins}
        LEFT JOIN sold ON sold.location_id = s.location_id AND sold.variant_id = s.variant_id{pending_joins}
        WHERE s.location_id IN ({stores}){only}
    )
    SELECT f.location_id, f.variant_id, f.available, f.incoming, f.pending_in, f.pending_out, f.sold,
        f.target_days, f.min_display, f.replenish, f.rebalance
    FROM fig f
    WHERE {where}
    """  # noqa: S608 - table names come from model meta; values are parameters or integers


def baseline_cover_sql() -> str:
    """The benchmark's baseline: cover for EVERY level in one vectorised statement, nothing else."""
    t = _tables()
    return f"""
    WITH {_velocity_cte(t)}
    SELECT s.location_id, s.variant_id, s.available,
        CAST(COALESCE(sold.units, 0) AS DOUBLE PRECISION) / %(window)s AS velocity,
        CASE WHEN COALESCE(sold.units, 0) > 0
             THEN s.available * CAST(%(window)s AS DOUBLE PRECISION) / sold.units END AS cover_days
    FROM {t["level"]} s
    LEFT JOIN sold ON sold.location_id = s.location_id AND sold.variant_id = s.variant_id
    """  # noqa: S608 - table names come from model meta; values are parameters


# --- The plan ----------------------------------------------------------------------------------


@dataclass
class LineBatch:
    """Lines of one planner, as columns (one entry per line)."""

    planner: str
    origin: np.ndarray
    destination: np.ndarray
    variant: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    why: list[str]
    inputs: list[str]  # JSON objects, as text

    def __len__(self) -> int:
        return len(self.quantity)


@dataclass
class Plan:
    batches: list[LineBatch] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    policies: dict[int, ReplenishmentPolicy] = field(default_factory=dict)
    codes: dict[int, str] = field(default_factory=dict)

    @property
    def line_count(self) -> int:
        return sum(len(batch) for batch in self.batches)

    @property
    def units(self) -> int:
        return sum(int(batch.quantity.sum()) for batch in self.batches)


def _fetch(sql: str, params: dict[str, Any]) -> np.ndarray:
    """The figures query's rows, plus each variant's price (last column); inactive variants dropped."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return np.zeros((0, len(COLUMNS)), dtype=np.float64)
    data = np.array(rows, dtype=np.float64)
    variants = np.unique(data[:, 1]).astype(np.int64)
    catalogue = np.array(
        [
            (pk, float(price), 1.0 if active else 0.0)
            for pk, price, active in Variant.objects.filter(pk__in=variants.tolist()).values_list(
                "pk", "price", "is_active"
            )
        ],
        dtype=np.float64,
    ).reshape(-1, 3)
    catalogue = catalogue[np.argsort(catalogue[:, 0])]
    at = np.searchsorted(catalogue[:, 0], data[:, 1])
    active = catalogue[at, 2] > 0
    return np.column_stack([data, catalogue[at, 1]])[active]


def _group_cumsum(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Running sum that restarts at each True in `group_start` (arrays already sorted by group)."""
    total = np.cumsum(values)
    starts = np.flatnonzero(group_start)
    offsets = np.zeros_like(total)
    if len(starts):
        before = np.where(starts > 0, total[starts - 1], 0)
        segment = np.cumsum(group_start) - 1
        offsets = before[segment]
    return total - offsets


class Figures:
    """The per-row figures of the planners, computed from the query's columns (numpy arrays)."""

    def __init__(self, data: np.ndarray, *, window: int, excess_days: float) -> None:
        col = {name: data[:, i] for i, name in enumerate(COLUMNS)}
        self.location = col["location_id"].astype(np.int64)
        self.variant = col["variant_id"].astype(np.int64)
        self.available = col["available"].astype(np.int64)
        self.incoming = col["incoming"].astype(np.int64)
        self.pending_in = col["pending_in"].astype(np.int64)
        self.pending_out = col["pending_out"].astype(np.int64)
        self.position = self.available + self.incoming + self.pending_in - self.pending_out
        self.velocity = col["sold"] / window
        self.target_days = col["target_days"]
        self.min_display = col["min_display"].astype(np.int64)
        self.replenish = col["replenish"] > 0
        self.rebalance = col["rebalance"] > 0
        self.price = col["price"]
        self.target_units = np.maximum(
            np.ceil(self.velocity * self.target_days - 1e-9).astype(np.int64), self.min_display
        )
        self.need = np.maximum(self.target_units - self.position, 0)
        self.keep = np.maximum(np.ceil(self.velocity * excess_days - 1e-9).astype(np.int64), self.target_units)
        self.excess = np.maximum(self.available - self.pending_out - self.keep, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.cover = np.where(self.velocity > 0, np.maximum(self.position, 0) / self.velocity, np.inf)
        # Least cover first; among items that do not sell (display minimum), the emptiest first.
        self.urgency = np.where(self.velocity > 0, self.cover, 1e9 + np.maximum(self.position, 0))
        self.stockout_risk = (self.velocity > 0) & (self.position <= self.velocity * STOCKOUT_HORIZON_DAYS)

    def __len__(self) -> int:
        return len(self.location)

    def columns(self, rows: np.ndarray) -> dict[str, list[Any]]:
        """The figures of `rows` as Python lists (fast to format)."""
        cover = np.where(np.isinf(self.cover[rows]), -1.0, np.round(self.cover[rows], 1))
        return {
            "velocity": np.round(self.velocity[rows], 3).tolist(),
            "available": self.available[rows].tolist(),
            "incoming": self.incoming[rows].tolist(),
            "pipeline": (self.pending_in[rows] - self.pending_out[rows]).tolist(),
            "position": self.position[rows].tolist(),
            "cover": cover.tolist(),
            "target_days": np.round(self.target_days[rows], 1).tolist(),
            "target_units": self.target_units[rows].tolist(),
            "min_display": self.min_display[rows].tolist(),
            "stockout": self.stockout_risk[rows].tolist(),
        }


def compute_plan(*, planners: Sequence[str], now: datetime) -> Plan:
    """Read the figures and decide the moves. Reads only; `persist_plan` writes."""
    settings_row = planner_settings()
    window = int(settings_row.velocity_window_days)
    excess_days = float(settings_row.excess_cover_days)
    policies = {
        policy.location_id: policy
        for policy in ReplenishmentPolicy.objects.filter(is_active=True).select_related("location")
    }
    codes = dict(Location.objects.values_list("pk", "code"))
    default_source = default_source_id()
    with_overrides = PolicyOverride.objects.exists()
    plan = Plan(policies=policies, codes=codes)
    plan.parameters = {
        "planners": list(planners),
        "now": now.isoformat(),
        "velocity_window_days": window,
        "excess_cover_days": excess_days,
        "min_shipment_units": settings_row.min_shipment_units,
        "min_shipment_value": str(settings_row.min_shipment_value),
        "default_source": codes.get(default_source) if default_source else None,
        "policies": {
            codes[loc]: {
                "target_days": str(p.target_days_of_cover),
                "min_display": p.min_display_quantity,
                "auto_approve_max_units": p.auto_approve_max_units,
                "auto_approve_max_value": str(p.auto_approve_max_value),
                "source": codes.get(p.source_id) if p.source_id else None,
                "replenish": p.replenish,
                "rebalance": p.rebalance,
            }
            for loc, p in sorted(policies.items())
        },
        "overrides": PolicyOverride.objects.count() if with_overrides else 0,
    }
    params = {"since": now - timedelta(days=window), "until": now, "window": window, "excess_days": excess_days}
    open_transfers = list(
        Transfer.objects.filter(
            status__in=[
                TransferStatus.PROPOSED,
                TransferStatus.APPROVED,
                TransferStatus.PICKING,
                TransferStatus.IN_TRANSIT,
            ]
        )
        .order_by("pk")
        .values_list("pk", "status", "origin_id")
    )
    open_ids = [pk for pk, _status, _origin in open_transfers]
    started = time.perf_counter()
    store_ids = sorted(
        loc
        for loc, policy in policies.items()
        if policy.location.is_active
        and policy.location.receives_transfers
        and policy.location.kind == LocationKind.STORE
    )
    data = _fetch(figures_sql(location_ids=store_ids, with_overrides=with_overrides, open_ids=open_ids), params)
    timings = {"figures_ms": round((time.perf_counter() - started) * 1000)}
    plan.counts = {
        "candidate_rows": len(data),
        "stores": len(store_ids),
    }
    started = time.perf_counter()
    figures = Figures(data, window=window, excess_days=excess_days)
    need = figures.need.copy()
    if "replenishment" in planners and len(figures):
        need = _replenish(plan, figures, default_source=default_source, open_transfers=open_transfers)
    allocate_ms = (time.perf_counter() - started) * 1000
    if "rebalancing" in planners and len(figures):
        receivers = figures.rebalance & (need > 0) & (figures.velocity > 0)
        wanted = np.unique(figures.variant[receivers])
        if len(wanted):
            started = time.perf_counter()
            donor_data = _fetch(
                figures_sql(
                    location_ids=store_ids, with_overrides=with_overrides, open_ids=open_ids, donors_of=wanted.tolist()
                ),
                params,
            )
            timings["donors_ms"] = round((time.perf_counter() - started) * 1000)
            plan.counts["donor_rows"] = len(donor_data)
            started = time.perf_counter()
            if len(donor_data):
                # One table of figures: the receivers' rows (need left after replenishment) + donors.
                both = Figures(np.vstack([data, donor_data]), window=window, excess_days=excess_days)
                remaining = np.concatenate([np.where(receivers, need, 0), np.zeros(len(donor_data), np.int64)])
                excess = np.concatenate([np.zeros(len(data), np.int64), both.excess[len(data) :]])
                _rebalance(plan, both, need=remaining, excess=excess, settings_row=settings_row)
            allocate_ms += (time.perf_counter() - started) * 1000
    timings["allocate_ms"] = round(allocate_ms)
    plan.counts.update(
        {
            "needing_rows": int((figures.need > 0).sum()),
            "lines": plan.line_count,
            "units": plan.units,
            "timings": timings,
        }
    )
    return plan


def _supply(source_ids: list[int], proposed_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Available units at the sources, net of their proposed outbound lines: (sorted keys, units).

    `proposed_ids`: the proposed transfers leaving the sources (their units are not held yet).
    """
    if not source_ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    t = _tables()
    transfer_filter = f"l.transfer_id IN ({_ids(proposed_ids)})" if proposed_ids else "1 = 0"
    sql = f"""
        SELECT s.location_id, s.variant_id, s.available - COALESCE(o.units, 0)
        FROM {t["level"]} s
        LEFT JOIN (
            SELECT tr.origin_id, l.variant_id, SUM(l.quantity) AS units
            FROM {t["line"]} l JOIN {t["transfer"]} tr ON tr.id = l.transfer_id
            WHERE {transfer_filter} AND NOT l.for_order
            GROUP BY tr.origin_id, l.variant_id
        ) o ON o.origin_id = s.location_id AND o.variant_id = s.variant_id
        WHERE s.location_id IN ({_ids(source_ids)}) AND s.available > 0
    """  # noqa: S608 - table names come from model meta; ids are integers
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    array = np.array(rows, dtype=np.int64)
    keys = (array[:, 0] << 32) | array[:, 1]
    order = np.argsort(keys)
    return keys[order], np.maximum(array[order, 2], 0)


def _days(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _inputs_json(planner: str, c: dict[str, list[Any]], i: int, extra: str) -> str:
    cover = c["cover"][i]
    return (
        f'{{"planner": "{planner}", "velocity": {c["velocity"][i]}, "available": {c["available"][i]}, '
        f'"incoming": {c["incoming"][i]}, "pipeline": {c["pipeline"][i]}, '
        f'"cover_days": {"null" if cover < 0 else cover}, "target_days": {c["target_days"][i]}, '
        f'"target_units": {c["target_units"][i]}, "min_display": {c["min_display"][i]}, '
        f'"stockout_risk": {"true" if c["stockout"][i] else "false"}{extra}}}'
    )


def _replenish(
    plan: Plan, f: Figures, *, default_source: int | None, open_transfers: list[tuple[int, str, int]]
) -> np.ndarray:
    """Top stores up from their source warehouse. Returns the need left after it."""
    remaining = f.need.copy()
    source_of = {loc: (policy.source_id or default_source or 0) for loc, policy in plan.policies.items()}
    locations, inverse = np.unique(f.location, return_inverse=True)
    source = np.array([source_of.get(int(loc), 0) for loc in locations], dtype=np.int64)[inverse]
    rows = np.flatnonzero(f.replenish & (f.need > 0) & (source > 0) & (source != f.location))
    if not len(rows):
        return remaining
    sources = sorted({int(s) for s in np.unique(source[rows])})
    proposed = [pk for pk, status, origin in open_transfers if status == TransferStatus.PROPOSED and origin in sources]
    keys, units = _supply(sources, proposed)
    if not len(keys):
        return remaining
    row_keys = (source[rows] << 32) | f.variant[rows]
    found_at = np.minimum(np.searchsorted(keys, row_keys), len(keys) - 1)
    found = keys[found_at] == row_keys
    rows, row_keys, found_at = rows[found], row_keys[found], found_at[found]
    if not len(rows):
        return remaining
    order = np.lexsort((f.urgency[rows], row_keys))
    rows, row_keys, found_at = rows[order], row_keys[order], found_at[order]
    wanted = f.need[rows]
    group_start = np.ones(len(rows), dtype=bool)
    group_start[1:] = row_keys[1:] != row_keys[:-1]
    running = _group_cumsum(wanted, group_start)
    supply = units[found_at]
    allocated = np.clip(supply - (running - wanted), 0, wanted)
    taken = allocated > 0
    rows, allocated, supply = rows[taken], allocated[taken], supply[taken]
    remaining[rows] -= allocated
    origin = source[rows]
    c = f.columns(rows)
    code = [plan.codes.get(int(o), "warehouse") for o in origin.tolist()]
    stock = supply.tolist()
    why, inputs = [], []
    for i in range(len(rows)):
        if c["velocity"][i] > 0 and c["target_units"][i] > c["min_display"][i]:
            reason = (
                f"cover {_days(c['cover'][i])} d < target {_days(c['target_days'][i])} d; "
                f"velocity {c['velocity'][i]:.2f}/d"
            )
        else:
            reason = f"{c['position'][i]} on hand and coming < display minimum {c['min_display'][i]}"
        why.append(f"{reason}; {code[i]} has {stock[i]}"[:255])
        inputs.append(_inputs_json("replenishment", c, i, f', "source_available": {stock[i]}'))
    plan.batches.append(
        LineBatch("replenishment", origin, f.location[rows], f.variant[rows], allocated, f.price[rows], why, inputs)
    )
    return remaining


def _rebalance(plan: Plan, f: Figures, *, need: np.ndarray, excess: np.ndarray, settings_row: PlannerSettings) -> None:
    """Move excess from stores where it sits to stores where it sells (see the module docstring)."""
    variant = f.variant
    donors = np.flatnonzero(f.rebalance & (excess > 0))
    receivers = np.flatnonzero(f.rebalance & (need > 0) & (f.velocity > 0))
    common = np.intersect1d(variant[donors], variant[receivers])
    if not len(common):
        plan.counts.update({"rebalancing_pairs": 0, "rebalancing_pairs_below_minimum": 0})
        return
    donors = donors[np.isin(variant[donors], common)]
    receivers = receivers[np.isin(variant[receivers], common)]
    donors = donors[np.lexsort((-excess[donors], variant[donors]))]
    receivers = receivers[np.lexsort((f.urgency[receivers], variant[receivers]))]
    # Per variant: flow = min(total excess, total need); each variant gets its own stretch of one axis.
    supply_total = np.bincount(np.searchsorted(common, variant[donors]), weights=excess[donors], minlength=len(common))
    demand_total = np.bincount(
        np.searchsorted(common, variant[receivers]), weights=need[receivers], minlength=len(common)
    )
    flow = np.minimum(supply_total, demand_total).astype(np.int64)
    offset = np.concatenate(([0], np.cumsum(flow)[:-1]))

    def ends(rows: np.ndarray, amounts: np.ndarray) -> np.ndarray:
        group = np.searchsorted(common, variant[rows])
        start = np.ones(len(rows), dtype=bool)
        start[1:] = variant[rows][1:] != variant[rows][:-1]
        return offset[group] + np.minimum(_group_cumsum(amounts, start), flow[group])

    donor_end = ends(donors, excess[donors])
    receiver_end = ends(receivers, need[receivers])
    points = np.unique(np.concatenate(([0], donor_end, receiver_end)))
    starts, stops = points[:-1], points[1:]
    donor_of = donors[np.searchsorted(donor_end, starts, side="right")]
    receiver_of = receivers[np.searchsorted(receiver_end, starts, side="right")]
    quantity = stops - starts
    moving = quantity > 0
    donor_of, receiver_of, quantity = donor_of[moving], receiver_of[moving], quantity[moving]
    # Group the moves per (origin, destination); keep the pairs whose expected gain is enough.
    pair = (f.location[donor_of] << 32) | f.location[receiver_of]
    pairs, pair_of = np.unique(pair, return_inverse=True)
    expected = np.minimum(quantity, f.velocity[receiver_of] * f.target_days[receiver_of])
    gain_units = np.bincount(pair_of, weights=expected, minlength=len(pairs))
    gain_value = np.bincount(pair_of, weights=expected * f.price[receiver_of], minlength=len(pairs))
    kept_pairs = (gain_units >= settings_row.min_shipment_units) & (
        gain_value >= float(settings_row.min_shipment_value)
    )
    plan.counts.update(
        {"rebalancing_pairs": int(kept_pairs.sum()), "rebalancing_pairs_below_minimum": int((~kept_pairs).sum())}
    )
    keep_move = kept_pairs[pair_of]
    donor_of, receiver_of, quantity, pair_of = (
        donor_of[keep_move],
        receiver_of[keep_move],
        quantity[keep_move],
        pair_of[keep_move],
    )
    if not len(quantity):
        return
    c = f.columns(receiver_of)
    d = f.columns(donor_of)
    keep = f.keep[donor_of].tolist()
    gain = np.round(gain_units[pair_of], 1).tolist()
    origin_codes = [plan.codes.get(int(o), "?") for o in f.location[donor_of].tolist()]
    min_units = settings_row.min_shipment_units
    why, inputs = [], []
    for i in range(len(quantity)):
        donor_cover = "no sales" if d["velocity"][i] <= 0 else f"{_days(d['cover'][i])} d of cover"
        why.append(
            (
                f"{origin_codes[i]} has {d['available'][i]} ({donor_cover}, keeps {keep[i]}); "
                f"here cover {_days(max(c['cover'][i], 0))} d < target {_days(c['target_days'][i])} d, "
                f"sells {c['velocity'][i]:.2f}/d; pair gain {gain[i]:.0f} units"
            )[:255]
        )
        inputs.append(
            _inputs_json(
                "rebalancing",
                c,
                i,
                f', "origin_available": {d["available"][i]}, "origin_velocity": {d["velocity"][i]}, '
                f'"origin_keeps": {keep[i]}, "pair_gain_units": {gain[i]}, "min_shipment_units": {min_units}',
            )
        )
    plan.batches.append(
        LineBatch(
            "rebalancing",
            f.location[donor_of],
            f.location[receiver_of],
            variant[receiver_of],
            quantity,
            f.price[receiver_of],
            why,
            inputs,
        )
    )


# --- Writing the plan ----------------------------------------------------------------------------


def _approval_reason(plan: Plan, planner: str, origin: int, destination: int, units: int, value: Decimal) -> str:
    """Empty when the transfer is within policy (auto-approved); else why a manager must look."""
    checks = [plan.policies.get(destination)]
    if planner == "rebalancing":
        checks.append(plan.policies.get(origin))
    for policy in checks:
        if policy is None:
            continue
        code = plan.codes.get(policy.location_id, "")
        if units > policy.auto_approve_max_units:
            return f"{units} units > automatic limit {policy.auto_approve_max_units} ({code})"
        if value > policy.auto_approve_max_value:
            return f"value {value:.2f} > automatic limit {policy.auto_approve_max_value} ({code})"
    return ""


def persist_plan(*, plan: Plan, run: PlanRun, actor: Any) -> list[Transfer]:
    """Write the plan's transfers (one per planner, origin and destination), lines and events.

    Caller owns the transaction (services.plan_run). Keys are `<run key>:<planner>:<origin>:<destination>`.
    """
    label = actor.label if hasattr(actor, "label") else actor.get_username()
    user = None if hasattr(actor, "label") else actor
    transfers: list[Transfer] = []
    groups = []  # (batch, sorted line order, group starts)
    for batch in plan.batches:
        if not len(batch):
            continue
        order = np.lexsort((batch.variant, batch.destination, batch.origin))
        pair = (batch.origin[order] << 32) | batch.destination[order]
        starts = np.flatnonzero(np.concatenate(([True], pair[1:] != pair[:-1])))
        units = np.add.reduceat(batch.quantity[order], starts)
        values = np.add.reduceat(batch.quantity[order] * batch.price[order], starts)
        counts = np.diff(np.concatenate((starts, [len(order)])))
        source = SOURCES[batch.planner]
        for start, unit_total, value_total, count in zip(
            starts.tolist(), units.tolist(), values.tolist(), counts.tolist(), strict=True
        ):
            origin, destination = int(batch.origin[order[start]]), int(batch.destination[order[start]])
            value = Decimal(str(round(value_total, 2)))
            transfers.append(
                Transfer(
                    origin_id=origin,
                    destination_id=destination,
                    status=TransferStatus.PROPOSED,
                    source=source,
                    plan_run=run,
                    reason=f"{source.label} plan {run.key}: {unit_total} units on {count} lines"[:255],
                    idempotency_key=f"{run.key}:{batch.planner}:{origin}:{destination}"[:200],
                    created_by=user,
                    created_by_label=label,
                    needs_approval_reason=_approval_reason(plan, batch.planner, origin, destination, unit_total, value),
                )
            )
        groups.append((batch, order, starts, counts))
    if not transfers:
        return []
    created = Transfer.objects.bulk_create(transfers)
    if any(transfer.pk is None for transfer in created):  # backends without RETURNING
        by_key = dict(Transfer.objects.filter(plan_run=run).values_list("idempotency_key", "pk"))
        for transfer in created:
            transfer.pk = by_key[transfer.idempotency_key]
    ids = iter([transfer.pk for transfer in created])
    for batch, order, starts, counts in groups:
        transfer_ids = np.repeat(np.array([next(ids) for _ in range(len(starts))], dtype=np.int64), counts)
        _insert_lines(batch, order, transfer_ids)
    TransferEvent.objects.bulk_create(
        [
            TransferEvent(
                transfer_id=transfer.pk,
                kind=TransferEventKind.CREATED,
                actor=user,
                actor_label=label,
                message=(
                    f"Planned by {run.key}"
                    + (
                        f"; waits for a manager: {transfer.needs_approval_reason}"
                        if transfer.needs_approval_reason
                        else ""
                    )
                )[:255],
                data={"plan_run": run.pk},
            )
            for transfer in created
        ]
    )
    return created


def _insert_lines(batch: LineBatch, order: np.ndarray, transfer_ids: np.ndarray) -> None:
    """Bulk insert one batch in `order`: PostgreSQL COPY (tens of thousands of lines), bulk_create elsewhere."""
    variants = batch.variant[order].tolist()
    quantities = batch.quantity[order].tolist()
    prices = np.round(batch.price[order], 2).tolist()
    positions = order.tolist()
    if connection.vendor == "postgresql":
        table = TransferLine._meta.db_table
        columns = (
            "transfer_id, variant_id, quantity, quantity_picked, quantity_counted, for_order, reference_type, "
            "reference_id, request_key, unexpected, unit_value, why, inputs"
        )
        rows = "".join(
            f"{transfer_id}\t{variant}\t{quantity}\t0\t0\tf\t\t\t\tf\t{price:.2f}\t"
            f"{_copy_text(batch.why[at])}\t{_copy_text(batch.inputs[at])}\n"
            for transfer_id, variant, quantity, price, at in zip(
                transfer_ids.tolist(), variants, quantities, prices, positions, strict=True
            )
        )
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg 3
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(rows)
        return
    TransferLine.objects.bulk_create(
        [
            TransferLine(
                transfer_id=transfer_id,
                variant_id=variant,
                quantity=quantity,
                unit_value=Decimal(f"{price:.2f}"),
                why=batch.why[at],
                inputs=json.loads(batch.inputs[at]),
            )
            for transfer_id, variant, quantity, price, at in zip(
                transfer_ids.tolist(), variants, quantities, prices, positions, strict=True
            )
        ],
        batch_size=2000,
    )


def _copy_text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value
