"""The planners' arithmetic: cover from the ledger in one SQL pass, allocation in numpy.

Figures (one query, `_FIGURES_SQL`)
-----------------------------------
For every stock level of a store with an active policy:

    velocity  v = units sold (ledger: reason sale or fulfil, on hand, negative) in the last
                  `velocity_window_days`, per day
    position  p = available + incoming (not for orders) + open planned lines to it - proposed lines from it
    target    T = max(ceil(v * target days), display minimum)      (variant > category > store policy)
    need        = T - p                                             when > 0
    keep      K = max(ceil(v * excess cover days), display minimum, T)
    excess      = available - proposed lines from it - K            when > 0

The query returns only the rows that need stock, and (when rebalancing) the rows with excess of
a variant that some store needs, so a million levels come back as the few thousand that matter.

Replenishment (numpy): needs are grouped by (source warehouse, variant), most urgent (least cover)
first; a running sum against the warehouse's available gives each store its share.

Rebalancing (numpy): per variant, donors (most excess first) and receivers that sell it (least
cover first) are laid end to end on one axis; the overlaps of their intervals are the moves.
Moves are grouped per (origin, destination); a pair ships only when its expected gain (units the
destination should sell within its target cover) reaches the minimum shipment size.
"""

from __future__ import annotations

import io
import math
import time
from collections import defaultdict
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


def _velocity_cte(t: dict[str, str]) -> str:
    return f"""
    sold AS (
        SELECT m.location_id, m.variant_id, -SUM(m.quantity) AS units
        FROM {t["movement"]} m
        WHERE m.state = 'on_hand' AND m.reason IN ('sale', 'fulfil') AND m.quantity < 0
          AND m.created_at >= %(since)s AND m.created_at < %(until)s
        GROUP BY m.location_id, m.variant_id
    )"""  # noqa: S608 - table names come from model meta; values are parameters


def figures_sql(*, with_overrides: bool, rebalancing: bool, source_ids: Sequence[int] = ()) -> str:
    """The planners' single pass over levels, ledger and open transfers (portable SQL).

    Rows that need stock always come back. With `rebalancing`, rows with excess come back too, but
    only for variants whose total need (an upper bound) is more than what `source_ids` (the
    warehouses replenishment draws on in the same run; none for a rebalancing-only run) hold: a
    variant the warehouse covers leaves nothing to rebalance, and its excess stays in the database.
    """
    t = _tables()
    override_joins = (
        f"""
        JOIN {t["variant"]} v ON v.id = s.variant_id
        JOIN {t["product"]} pr ON pr.id = v.product_id
        LEFT JOIN {t["override"]} ov ON ov.policy_id = p.id AND ov.variant_id = s.variant_id
        LEFT JOIN {t["override"]} oc ON oc.policy_id = p.id AND oc.variant_id IS NULL AND oc.category = pr.category"""
        if with_overrides
        else f"""
        JOIN {t["variant"]} v ON v.id = s.variant_id"""
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
    need = "(f.position * %(window)s < f.sold * f.target_days OR f.position < f.min_display)"
    sources = ", ".join(str(int(source)) for source in source_ids)
    supply = (
        f""",
    supply AS (
        SELECT variant_id, SUM(available) AS units FROM {t["level"]}
        WHERE location_id IN ({sources}) AND available > 0
        GROUP BY variant_id
    )"""  # noqa: S608 - table names come from model meta; ids are integers
        if rebalancing and sources
        else ""
    )
    # Upper bound of each row's need: its target (no rounding down) plus one, less its position.
    row_need = (
        "(CASE WHEN r.sold * r.target_days / %(window)s > r.min_display "
        "THEN r.sold * r.target_days / %(window)s ELSE r.min_display END) - r.position + 1"
    )
    unmet = (
        f""",
    unmet AS (
        SELECT r.variant_id FROM fig r {"LEFT JOIN supply sup ON sup.variant_id = r.variant_id" if supply else ""}
        WHERE {need.replace("f.", "r.")}
        GROUP BY r.variant_id
        HAVING SUM({row_need}) > {"COALESCE(MAX(sup.units), 0)" if supply else "0"}
    )"""  # noqa: S608 - no values: parameters and integers only
        if rebalancing
        else ""
    )
    donors = (
        """
        OR (f.rebalance AND f.available - f.pending_out > f.min_display
            AND (f.available - f.pending_out) * %(window)s > f.sold * %(excess_days)s
            AND (f.available - f.pending_out) * %(window)s > f.sold * f.target_days
            AND f.variant_id IN (SELECT variant_id FROM unmet))"""
        if rebalancing
        else ""
    )
    return f"""
    WITH {_velocity_cte(t)},
    pipe AS (
        SELECT tr.destination_id AS location_id, l.variant_id,
            SUM(CASE WHEN tr.status IN ('proposed', 'approved', 'picking') AND NOT l.for_order THEN l.quantity
                     WHEN tr.status = 'in_transit' AND l.for_order THEN -COALESCE(l.quantity_dispatched, 0)
                     ELSE 0 END) AS pending_in
        FROM {t["line"]} l JOIN {t["transfer"]} tr ON tr.id = l.transfer_id
        WHERE tr.status IN ('proposed', 'approved', 'picking', 'in_transit')
        GROUP BY tr.destination_id, l.variant_id
    ),
    outp AS (
        SELECT tr.origin_id AS location_id, l.variant_id, SUM(l.quantity) AS pending_out
        FROM {t["line"]} l JOIN {t["transfer"]} tr ON tr.id = l.transfer_id
        WHERE tr.status = 'proposed' AND NOT l.for_order
        GROUP BY tr.origin_id, l.variant_id
    ),
    fig AS (
        SELECT s.location_id, s.variant_id, s.available, s.incoming,
            COALESCE(pipe.pending_in, 0) AS pending_in,
            COALESCE(outp.pending_out, 0) AS pending_out,
            s.available + s.incoming + COALESCE(pipe.pending_in, 0) - COALESCE(outp.pending_out, 0) AS position,
            COALESCE(sold.units, 0) AS sold,
            CAST({target} AS DOUBLE PRECISION) AS target_days,
            {display} AS min_display,
            p.replenish, p.rebalance, v.price
        FROM {t["level"]} s
        JOIN {t["policy"]} p ON p.location_id = s.location_id
        JOIN {t["location"]} loc ON loc.id = s.location_id
        {override_joins}
        LEFT JOIN sold ON sold.location_id = s.location_id AND sold.variant_id = s.variant_id
        LEFT JOIN pipe ON pipe.location_id = s.location_id AND pipe.variant_id = s.variant_id
        LEFT JOIN outp ON outp.location_id = s.location_id AND outp.variant_id = s.variant_id
        WHERE p.is_active AND loc.is_active AND loc.receives_transfers AND loc.kind = 'store' AND v.is_active
    ){supply}{unmet}
    SELECT f.location_id, f.variant_id, f.available, f.incoming, f.pending_in, f.pending_out, f.sold,
        f.target_days, f.min_display, f.replenish, f.rebalance, CAST(f.price AS DOUBLE PRECISION)
    FROM fig f
    WHERE {need}{donors}
    """  # noqa: S608 - table names come from model meta; values are parameters


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
class PlannedLine:
    planner: str
    origin_id: int
    destination_id: int
    variant_id: int
    quantity: int
    unit_value: Decimal
    why: str
    inputs: dict[str, Any]


@dataclass
class Plan:
    lines: list[PlannedLine] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    policies: dict[int, ReplenishmentPolicy] = field(default_factory=dict)
    codes: dict[int, str] = field(default_factory=dict)


def _fetch(sql: str, params: dict[str, Any]) -> np.ndarray:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return np.zeros((0, len(COLUMNS)), dtype=np.float64)
    return np.array(rows, dtype=np.float64)


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
    rebalancing = "rebalancing" in planners
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
    params = {
        "since": now - timedelta(days=window),
        "until": now,
        "window": window,
        "excess_days": excess_days,
    }
    sources: list[int] = []
    if "replenishment" in planners:
        sources = sorted(
            {source for p in policies.values() if p.replenish and (source := p.source_id or default_source)}
        )
    started = time.perf_counter()
    data = _fetch(
        figures_sql(with_overrides=with_overrides, rebalancing=rebalancing, source_ids=sources),
        params,
    )
    timings = {"figures_ms": round((time.perf_counter() - started) * 1000)}
    plan.counts = {
        "candidate_rows": len(data),
        "levels": StockLevel.objects.filter(location_id__in=list(policies)).count(),
    }
    if not len(data):
        plan.counts.update({"lines": 0, "units": 0, "timings": timings})
        return plan
    started = time.perf_counter()
    col = {name: data[:, i] for i, name in enumerate(COLUMNS)}
    location = col["location_id"].astype(np.int64)
    variant = col["variant_id"].astype(np.int64)
    available = col["available"].astype(np.int64)
    incoming = col["incoming"].astype(np.int64)
    pending_in = col["pending_in"].astype(np.int64)
    pending_out = col["pending_out"].astype(np.int64)
    position = available + incoming + pending_in - pending_out
    velocity = col["sold"] / window
    target_days = col["target_days"]
    min_display = col["min_display"].astype(np.int64)
    target_units = np.maximum(np.ceil(velocity * target_days - 1e-9).astype(np.int64), min_display)
    need = np.maximum(target_units - position, 0)
    keep = np.maximum(np.ceil(velocity * excess_days - 1e-9).astype(np.int64), target_units)
    excess = np.maximum(available - pending_out - keep, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(velocity > 0, np.maximum(position, 0) / velocity, np.inf)
    # Least cover first; among items that do not sell (display minimum), the emptiest first.
    urgency = np.where(velocity > 0, cover, 1e9 + np.maximum(position, 0))
    stockout_risk = (velocity > 0) & (position <= velocity * STOCKOUT_HORIZON_DAYS)
    price = col["price"]
    figures = {
        "location": location,
        "variant": variant,
        "available": available,
        "incoming": incoming,
        "pending_in": pending_in,
        "pending_out": pending_out,
        "position": position,
        "velocity": velocity,
        "target_days": target_days,
        "target_units": target_units,
        "min_display": min_display,
        "cover": cover,
        "stockout_risk": stockout_risk,
        "price": price,
    }
    remaining_need = need.copy()
    if "replenishment" in planners:
        remaining_need = _replenish(
            plan, figures, need=need, urgency=urgency, eligible=col["replenish"] > 0, default_source=default_source
        )
    if rebalancing:
        _rebalance(
            plan,
            figures,
            need=remaining_need,
            excess=excess,
            keep=keep,
            urgency=urgency,
            eligible=col["rebalance"] > 0,
            settings_row=settings_row,
        )
    plan.counts.update(
        {
            "needing_rows": int((need > 0).sum()),
            "lines": len(plan.lines),
            "units": int(sum(line.quantity for line in plan.lines)),
            "timings": {**timings, "allocate_ms": round((time.perf_counter() - started) * 1000)},
        }
    )
    return plan


def _supply(source_ids: list[int], variants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Available units at the sources, net of their proposed outbound lines: (sorted keys, units)."""
    if not source_ids or not len(variants):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    t = _tables()
    placeholders = ", ".join(["%s"] * len(source_ids))
    sql = f"""
        SELECT s.location_id, s.variant_id, s.available - COALESCE(o.units, 0)
        FROM {t["level"]} s
        LEFT JOIN (
            SELECT tr.origin_id, l.variant_id, SUM(l.quantity) AS units
            FROM {t["line"]} l JOIN {t["transfer"]} tr ON tr.id = l.transfer_id
            WHERE tr.status = 'proposed' AND NOT l.for_order AND tr.origin_id IN ({placeholders})
            GROUP BY tr.origin_id, l.variant_id
        ) o ON o.origin_id = s.location_id AND o.variant_id = s.variant_id
        WHERE s.location_id IN ({placeholders}) AND s.available > 0
    """  # noqa: S608 - table names come from model meta; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [*source_ids, *source_ids])
        rows = cursor.fetchall()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    array = np.array(rows, dtype=np.int64)
    keys = (array[:, 0] << 32) | array[:, 1]
    order = np.argsort(keys)
    return keys[order], np.maximum(array[order, 2], 0)


def _replenish(
    plan: Plan,
    f: dict[str, np.ndarray],
    *,
    need: np.ndarray,
    urgency: np.ndarray,
    eligible: np.ndarray,
    default_source: int | None,
) -> np.ndarray:
    """Top stores up from their source warehouse. Returns the need left after it."""
    remaining = need.copy()
    source_of = {loc: (policy.source_id or default_source) for loc, policy in plan.policies.items() if policy.replenish}
    source = np.array([source_of.get(int(loc)) or 0 for loc in f["location"]], dtype=np.int64)
    rows = np.flatnonzero(eligible & (need > 0) & (source > 0) & (source != f["location"]))
    if not len(rows):
        return remaining
    keys, units = _supply(sorted({int(s) for s in source[rows]}), f["variant"][rows])
    if not len(keys):
        return remaining
    row_keys = (source[rows] << 32) | f["variant"][rows]
    position_in_supply = np.searchsorted(keys, row_keys)
    position_in_supply = np.minimum(position_in_supply, len(keys) - 1)
    found = keys[position_in_supply] == row_keys
    rows, row_keys, position_in_supply = rows[found], row_keys[found], position_in_supply[found]
    if not len(rows):
        return remaining
    order = np.lexsort((urgency[rows], row_keys))
    rows, row_keys, position_in_supply = rows[order], row_keys[order], position_in_supply[order]
    wanted = need[rows]
    group_start = np.ones(len(rows), dtype=bool)
    group_start[1:] = row_keys[1:] != row_keys[:-1]
    running = _group_cumsum(wanted, group_start)
    supply = units[position_in_supply]
    allocated = np.clip(supply - (running - wanted), 0, wanted)
    taken = allocated > 0
    for row, quantity, stock in zip(rows[taken], allocated[taken], supply[taken], strict=True):
        origin = int(source[row])
        remaining[row] -= quantity
        inputs = _inputs(f, row, planner="replenishment")
        inputs["source_available"] = int(stock)
        plan.lines.append(
            PlannedLine(
                planner="replenishment",
                origin_id=origin,
                destination_id=int(f["location"][row]),
                variant_id=int(f["variant"][row]),
                quantity=int(quantity),
                unit_value=Decimal(str(round(float(f["price"][row]), 2))),
                why=_why_replenish(f, row, origin_code=plan.codes.get(origin, "warehouse"), stock=int(stock)),
                inputs=inputs,
            )
        )
    return remaining


def _rebalance(
    plan: Plan,
    f: dict[str, np.ndarray],
    *,
    need: np.ndarray,
    excess: np.ndarray,
    keep: np.ndarray,
    urgency: np.ndarray,
    eligible: np.ndarray,
    settings_row: PlannerSettings,
) -> None:
    """Move excess from stores where it sits to stores where it sells (see the module docstring)."""
    variant = f["variant"]
    donors = np.flatnonzero(eligible & (excess > 0))
    receivers = np.flatnonzero(eligible & (need > 0) & (f["velocity"] > 0))
    common = np.intersect1d(variant[donors], variant[receivers])
    donors = donors[np.isin(variant[donors], common)]
    receivers = receivers[np.isin(variant[receivers], common)]
    if not len(common):
        return
    donors = donors[np.lexsort((-excess[donors], variant[donors]))]
    receivers = receivers[np.lexsort((urgency[receivers], variant[receivers]))]
    # Per variant: flow = min(total excess, total need); each group gets its own stretch of one axis.
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
    # Group the moves per (origin, destination) and keep the pairs whose expected gain is enough.
    pairs: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for donor, receiver, units in zip(donor_of, receiver_of, quantity, strict=True):
        if units <= 0:
            continue
        pairs[(int(f["location"][donor]), int(f["location"][receiver]))].append((int(donor), int(receiver), int(units)))
    min_units = settings_row.min_shipment_units
    min_value = float(settings_row.min_shipment_value)
    kept = dropped = 0
    for (origin, destination), moves in sorted(pairs.items()):
        gain_units = 0.0
        gain_value = 0.0
        for _donor, receiver, units in moves:
            expected = min(units, f["velocity"][receiver] * f["target_days"][receiver])
            gain_units += expected
            gain_value += expected * float(f["price"][receiver])
        if gain_units < min_units or gain_value < min_value:
            dropped += 1
            continue
        kept += 1
        for donor, receiver, units in moves:
            inputs = _inputs(f, receiver, planner="rebalancing")
            inputs.update(
                {
                    "origin_available": int(f["available"][donor]),
                    "origin_velocity": round(float(f["velocity"][donor]), 3),
                    "origin_keeps": int(keep[donor]),
                    "pair_gain_units": round(gain_units, 1),
                    "min_shipment_units": min_units,
                }
            )
            plan.lines.append(
                PlannedLine(
                    planner="rebalancing",
                    origin_id=origin,
                    destination_id=destination,
                    variant_id=int(variant[receiver]),
                    quantity=units,
                    unit_value=Decimal(str(round(float(f["price"][receiver]), 2))),
                    why=_why_rebalance(
                        f,
                        donor,
                        receiver,
                        keep=int(keep[donor]),
                        origin_code=plan.codes.get(origin, "?"),
                        gain=gain_units,
                    ),
                    inputs=inputs,
                )
            )
    plan.counts.update({"rebalancing_pairs": kept, "rebalancing_pairs_below_minimum": dropped})


def _inputs(f: dict[str, np.ndarray], row: int, *, planner: str) -> dict[str, Any]:
    cover = float(f["cover"][row])
    return {
        "planner": planner,
        "velocity": round(float(f["velocity"][row]), 3),
        "available": int(f["available"][row]),
        "incoming": int(f["incoming"][row]),
        "pipeline": int(f["pending_in"][row] - f["pending_out"][row]),
        "position": int(f["position"][row]),
        "cover_days": None if math.isinf(cover) else round(cover, 1),
        "target_days": round(float(f["target_days"][row]), 1),
        "target_units": int(f["target_units"][row]),
        "min_display": int(f["min_display"][row]),
        "stockout_risk": bool(f["stockout_risk"][row]),
    }


def _days(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _why_replenish(f: dict[str, np.ndarray], row: int, *, origin_code: str, stock: int) -> str:
    velocity = float(f["velocity"][row])
    position = int(f["position"][row])
    if velocity > 0 and int(f["target_units"][row]) > int(f["min_display"][row]):
        reason = (
            f"cover {_days(float(f['cover'][row]))} d < target {_days(float(f['target_days'][row]))} d; "
            f"velocity {velocity:.2f}/d"
        )
    else:
        reason = f"{position} on hand and coming < display minimum {int(f['min_display'][row])}"
    return f"{reason}; {origin_code} has {stock}"[:255]


def _why_rebalance(
    f: dict[str, np.ndarray], donor: int, receiver: int, *, keep: int, origin_code: str, gain: float
) -> str:
    donor_velocity = float(f["velocity"][donor])
    donor_cover = "no sales" if donor_velocity <= 0 else f"{_days(float(f['cover'][donor]))} d of cover"
    return (
        f"{origin_code} has {int(f['available'][donor])} ({donor_cover}, keeps {keep}); "
        f"here cover {_days(float(f['cover'][receiver]))} d < target {_days(float(f['target_days'][receiver]))} d, "
        f"sells {float(f['velocity'][receiver]):.2f}/d; pair gain {gain:.0f} units"
    )[:255]


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
    groups: dict[tuple[str, int, int], list[PlannedLine]] = defaultdict(list)
    for line in plan.lines:
        groups[(line.planner, line.origin_id, line.destination_id)].append(line)
    if not groups:
        return []
    label = actor.label if hasattr(actor, "label") else actor.get_username()
    user = None if hasattr(actor, "label") else actor
    transfers = []
    for (planner, origin, destination), lines in sorted(groups.items()):
        units = sum(line.quantity for line in lines)
        value = sum((line.unit_value * line.quantity for line in lines), Decimal("0"))
        source = TransferSource.REPLENISHMENT if planner == "replenishment" else TransferSource.REBALANCING
        transfers.append(
            Transfer(
                origin_id=origin,
                destination_id=destination,
                status=TransferStatus.PROPOSED,
                source=source,
                plan_run=run,
                reason=f"{source.label} plan {run.key}: {units} units on {len(lines)} lines"[:255],
                idempotency_key=f"{run.key}:{planner}:{origin}:{destination}"[:200],
                created_by=user,
                created_by_label=label,
                needs_approval_reason=_approval_reason(plan, planner, origin, destination, units, value),
            )
        )
    created = Transfer.objects.bulk_create(transfers)
    if any(transfer.pk is None for transfer in created):  # backends without RETURNING
        by_key = dict(Transfer.objects.filter(plan_run=run).values_list("idempotency_key", "pk"))
        for transfer in created:
            transfer.pk = by_key[transfer.idempotency_key]
    by_group = {(transfer.source, transfer.origin_id, transfer.destination_id): transfer.pk for transfer in created}
    rows: list[tuple[int, PlannedLine]] = []
    for (planner, origin, destination), lines in groups.items():
        source = TransferSource.REPLENISHMENT if planner == "replenishment" else TransferSource.REBALANCING
        transfer_id = by_group[(source, origin, destination)]
        rows.extend((transfer_id, line) for line in sorted(lines, key=lambda line: line.variant_id))
    _insert_lines(rows)
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


def _insert_lines(rows: list[tuple[int, PlannedLine]]) -> None:
    """Bulk insert: PostgreSQL COPY (fast for tens of thousands of lines), bulk_create elsewhere."""
    if connection.vendor == "postgresql":
        import json

        table = TransferLine._meta.db_table
        columns = (
            "transfer_id, variant_id, quantity, quantity_picked, quantity_counted, for_order, reference_type, "
            "reference_id, request_key, unexpected, unit_value, why, inputs"
        )
        buffer = io.StringIO()
        for transfer_id, line in rows:
            buffer.write(
                "\t".join(
                    (
                        str(transfer_id),
                        str(line.variant_id),
                        str(line.quantity),
                        "0",
                        "0",
                        "f",
                        "",
                        "",
                        "",
                        "f",
                        str(line.unit_value),
                        _copy_text(line.why),
                        _copy_text(json.dumps(line.inputs)),
                    )
                )
                + "\n"
            )
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg 3
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
        return
    TransferLine.objects.bulk_create(
        [
            TransferLine(
                transfer_id=transfer_id,
                variant_id=line.variant_id,
                quantity=line.quantity,
                unit_value=line.unit_value,
                why=line.why,
                inputs=line.inputs,
            )
            for transfer_id, line in rows
        ],
        batch_size=2000,
    )


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
