"""Benchmark: a full transfer-planning run over 50 stores x 20,000 variants (1M stock levels) with
90 days of sales in the ledger, against a single vectorised SQL baseline computing the same cover.

    .venv/bin/python bench/planning.py                 # generate once (a few minutes), then measure
    .venv/bin/python bench/planning.py --record        # ... and write the figures to docs/PERFORMANCE.md

Targets (the issue): the planning run (replenishment + rebalancing, transfers written) in at most
30 s, under 2 GiB of memory, and at most 2x the baseline measured in the same run.

How it measures
---------------
- Data: bench/common.py's `ensure_stock` (levels + opening receipts by COPY) on its own database
  (BENCH_DATABASE_URL, default omni_bench_planning), then 90 days of sales written by one
  INSERT ... SELECT (deterministic: setseed), a restock receipt per level so the ledger still sums
  to the levels, a deep warehouse, and a policy per store.
- Each measurement runs in a fresh child process (so its peak RSS is its own) and is repeated;
  the planning run happens inside a transaction that is rolled back, so every repeat plans from
  the same state. Reported: wall time and the child's peak RSS (getrusage ru_maxrss).
- Baseline: `transfers.planning.baseline_cover_sql()`: velocity from the ledger (GROUP BY) joined to
  every level, cover per level, fetched to Python: the same cover figures, nothing else.
- After the timed runs, one run is committed and its within-policy transfers are approved (the
  stock reservations), timed separately: approval is per transfer, not part of planning.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omni_bench_planning")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bench_setup, django_child_setup, ensure_stock  # noqa: E402

SALES_ACTOR = "system:bench-sales"
DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- transfers-planning:start -->", "<!-- transfers-planning:end -->"


# --- Data ------------------------------------------------------------------------------------------


def ensure_sales(*, store_ids: list[int], days: int, seed: float = 0.42) -> int:
    """90 days of sales at the stores (one movement per level and day with sales). Returns rows added."""
    from django.db import connection, transaction

    from inventory.models import StockMovement

    existing = StockMovement.objects.filter(actor_label=SALES_ACTOR).count()
    if existing:
        return 0
    started = time.perf_counter()
    print(f"Generating {days} days of sales for {len(store_ids)} stores ...", flush=True)
    # Velocity classes by a hash of the level: half never sell, 30% 0.03/day, 15% 0.15/day, 5% 0.6/day.
    # Millions of rows load much faster without the ledger's secondary indexes: they are dropped
    # for the load and rebuilt from their own definitions afterwards (in the same transaction).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename = 'inventory_stockmovement' AND i.indexdef NOT LIKE 'CREATE UNIQUE%%'
            """
        )
        secondary = cursor.fetchall()
        for name, _definition in secondary:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SELECT setseed(%s)", [seed])
        cursor.execute(
            """
            INSERT INTO inventory_stockmovement (location_id, variant_id, state, quantity, reason, reason_code, note,
                reference_type, reference_id, actor_label, operation_key, idempotency_key, created_at)
            SELECT l.location_id, l.variant_id, 'on_hand', -(1 + (random() < l.rate / 2)::int), 'sale', '', '',
                   '', '', %(actor)s, k.key, k.key || '|' || l.location_id || '|' || l.variant_id || '|on_hand',
                   now() - make_interval(days => d.day, secs => (random() * 36000)::int)
            FROM (
                SELECT s.location_id, s.variant_id,
                       CASE WHEN h < 50 THEN 0 WHEN h < 80 THEN 0.03 WHEN h < 95 THEN 0.15 ELSE 0.6 END AS rate
                FROM (
                    SELECT location_id, variant_id, abs(hashtext(location_id || ':' || variant_id)) %% 100 AS h
                    FROM inventory_stocklevel WHERE location_id = ANY(%(stores)s)
                ) s
            ) l
            CROSS JOIN generate_series(0, %(last)s) AS d(day)
            CROSS JOIN LATERAL (SELECT 'bench-sale:' || l.location_id || ':' || l.variant_id || ':' || d.day AS key) k
            -- "+ d.day * 0" ties the draw to the day: without it PostgreSQL pushes the (volatile)
            -- condition below the join and draws once per level instead of once per level and day.
            WHERE l.rate > 0 AND random() + d.day * 0 < 1 - exp(-l.rate)
            """,
            {"actor": SALES_ACTOR, "stores": store_ids, "last": days - 1},
        )
        added = cursor.rowcount
        # Restock what was sold (dated before the first sale) so every level still equals its ledger.
        cursor.execute(
            """
            INSERT INTO inventory_stockmovement (location_id, variant_id, state, quantity, reason, reason_code, note,
                reference_type, reference_id, actor_label, operation_key, idempotency_key, created_at)
            SELECT location_id, variant_id, 'on_hand', -SUM(quantity), 'receipt', 'bench-restock', '', '', '',
                   %(actor)s, 'bench-restock:' || location_id || ':' || variant_id,
                   'bench-restock:' || location_id || ':' || variant_id || '|' || location_id || '|' || variant_id
                   || '|on_hand', now() - make_interval(days => %(days)s)
            FROM inventory_stockmovement WHERE actor_label = %(actor)s AND reason = 'sale'
            GROUP BY location_id, variant_id
            """,
            {"actor": SALES_ACTOR, "days": days},
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the deferred FK checks: CREATE INDEX needs none pending
        for _name, definition in secondary:
            cursor.execute(definition)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE inventory_stockmovement")
    print(f"  {added:,} sale movements in {time.perf_counter() - started:.0f} s", flush=True)
    return added


def ensure_warehouse_stock(*, warehouse_id: int, on_hand: int = 400) -> None:
    """A deep warehouse: top every warehouse level up to `on_hand` (levels and ledger together)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inventory_stockmovement (location_id, variant_id, state, quantity, reason, reason_code, note,
                reference_type, reference_id, actor_label, operation_key, idempotency_key, created_at)
            SELECT location_id, variant_id, 'on_hand', %(target)s - on_hand, 'receipt', 'bench-warehouse', '', '', '',
                   'system:bench-seed', 'bench-warehouse:' || variant_id,
                   'bench-warehouse:' || variant_id || '|' || location_id || '|' || variant_id || '|on_hand',
                   now() - interval '91 days'
            FROM inventory_stocklevel WHERE location_id = %(warehouse)s AND on_hand < %(target)s
            """,
            {"target": on_hand, "warehouse": warehouse_id},
        )
        cursor.execute(
            "UPDATE inventory_stocklevel SET on_hand = %(target)s "
            "WHERE location_id = %(warehouse)s AND on_hand < %(target)s",
            {"target": on_hand, "warehouse": warehouse_id},
        )


def ensure_policies(*, store_ids: list[int], warehouse_id: int) -> None:
    from decimal import Decimal

    from transfers.models import PlannerSettings, ReplenishmentPolicy

    ReplenishmentPolicy.objects.bulk_create(
        [
            ReplenishmentPolicy(
                location_id=store_id,
                source_id=warehouse_id,
                target_days_of_cover=Decimal("14"),
                min_display_quantity=0,
                auto_approve_max_units=100_000,
                auto_approve_max_value=Decimal("10000000"),
            )
            for store_id in store_ids
        ],
        ignore_conflicts=True,
    )
    if not PlannerSettings.objects.exists():
        PlannerSettings.objects.create(min_shipment_units=10, excess_cover_days=Decimal("60"))


# --- Measurements (each in a child process) -----------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child_baseline() -> dict[str, object]:
    from django.db import connection
    from django.utils import timezone

    from transfers.planning import baseline_cover_sql, planner_settings

    window = planner_settings().velocity_window_days
    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            baseline_cover_sql(), {"since": now - timezone.timedelta(days=window), "until": now, "window": window}
        )
        rows = cursor.fetchall()
    seconds = time.perf_counter() - started
    covered = sum(1 for row in rows if row[4] is not None)
    return {"seconds": seconds, "rows": len(rows), "with_cover": covered, "peak_rss_mb": _peak_rss_mb()}


def child_plan() -> dict[str, object]:
    from django.db import connection, transaction
    from django.utils import timezone

    from transfers import services

    baseline_rss = _peak_rss_mb()
    started = time.perf_counter()
    with transaction.atomic():
        outcome = services.plan_run(
            planners=["replenishment", "rebalancing"], key=f"bench:{time.time_ns()}", now=timezone.now()
        )
        with connection.cursor() as cursor:
            # The deferred foreign-key checks would run at commit: run them now, inside the timing.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        seconds = time.perf_counter() - started
        counts = dict(outcome.run.counts)
        transaction.set_rollback(True)  # every repeat plans from the same state
    return {"seconds": seconds, "counts": counts, "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": baseline_rss}


def child_commit_and_approve() -> dict[str, object]:
    """Plan, then approve what is within policy (the holds at the origin), all rolled back after."""
    from django.db import connection, transaction
    from django.utils import timezone

    from transfers import services
    from transfers.models import TransferLine

    with transaction.atomic():
        started = time.perf_counter()
        outcome = services.plan_run(
            planners=["replenishment", "rebalancing"], key=f"bench-approve:{time.time_ns()}", now=timezone.now()
        )
        planned = time.perf_counter() - started
        started = time.perf_counter()
        approved = services.plan_auto_approve(run_id=outcome.run.pk)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        approving = time.perf_counter() - started
        lines = TransferLine.objects.filter(transfer__plan_run=outcome.run).count()
        transaction.set_rollback(True)  # leave the bench database as it was
    return {
        "plan_seconds": planned,
        "approve_seconds": approving,
        "approved_transfers": approved,
        "lines": lines,
        "peak_rss_mb": _peak_rss_mb(),
    }


CHILDREN = {"baseline": child_baseline, "plan": child_plan, "approve": child_commit_and_approve}


def run_child(name: str) -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode:
        raise SystemExit(f"child {name} failed:\n{output.stdout}\n{output.stderr}")
    return json.loads(output.stdout.strip().splitlines()[-1])


# --- Report ------------------------------------------------------------------------------------------


def record(text: str) -> None:
    DOC.parent.mkdir(exist_ok=True)
    current = DOC.read_text() if DOC.exists() else "# Performance\n"
    section = f"{START}\n{text.rstrip()}\n{END}\n"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        current = before + section + ("\n" + after if after else "")
    else:
        current = current.rstrip("\n") + "\n\n" + section
    DOC.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--variants", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="write the figures to docs/PERFORMANCE.md")
    parser.add_argument("--skip-approve", action="store_true")
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when a target is missed (tiny smoke runs miss them)"
    )
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        django_child_setup()
        print(json.dumps(CHILDREN[args.child]()))
        return

    bench_setup()
    from django.db import connection

    from inventory.models import StockLevel, StockMovement

    stock = ensure_stock(locations=args.stores + 1, variants=args.variants)
    warehouse_id, store_ids = stock.location_ids[0], stock.location_ids[1:]
    ensure_sales(store_ids=store_ids, days=args.days)
    ensure_warehouse_stock(warehouse_id=warehouse_id)
    ensure_policies(store_ids=store_ids, warehouse_id=warehouse_id)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    levels = StockLevel.objects.count()
    sales = StockMovement.objects.filter(reason="sale").count()
    movements = StockMovement.objects.count()
    print(f"Data: {levels:,} levels, {sales:,} sale movements ({movements:,} movements in all)", flush=True)

    load_before = os.getloadavg()[0]
    baselines, plans = [], []
    for round_number in range(args.repeat):
        baselines.append(run_child("baseline"))
        plans.append(run_child("plan"))
        print(
            f"  round {round_number + 1}: baseline {baselines[-1]['seconds']:.2f} s, "
            f"planning {plans[-1]['seconds']:.2f} s ({plans[-1]['counts']['lines']:,} lines, "
            f"peak RSS {plans[-1]['peak_rss_mb']:.0f} MiB)",
            flush=True,
        )
    baseline = statistics.median(float(b["seconds"]) for b in baselines)
    plan = statistics.median(float(p["seconds"]) for p in plans)
    worst_plan = max(float(p["seconds"]) for p in plans)
    rss = max(float(p["peak_rss_mb"]) for p in plans)
    counts = plans[-1]["counts"]
    assert isinstance(counts, dict)
    timings = counts.get("timings", {})
    approve = None if args.skip_approve else run_child("approve")

    ratio = plan / baseline
    verdict = "PASS" if worst_plan <= 30 and rss < 2048 and ratio <= 2 else "FAIL"
    lines = [
        "## Transfer planning (replenishment + rebalancing)",
        "",
        "`.venv/bin/python bench/planning.py --record` (bench/planning.py explains the method).",
        "",
        f"Data: {args.stores} stores x {args.variants:,} variants = {levels:,} stock levels, "
        f"{sales:,} sale movements over {args.days} days ({movements:,} ledger rows in all); "
        "velocity window 28 days, target 14 days of cover, excess over 60 days.",
        "",
        "| measure | median of " + str(args.repeat) + " | target |",
        "|---|---|---|",
        f"| baseline: cover for every level, one SQL statement, fetched | {baseline:.2f} s | - |",
        f"| planning run: figures + both planners + transfers written | {plan:.2f} s (worst {worst_plan:.2f} s) "
        "| <= 30 s |",
        f"| planning / baseline | {ratio:.2f}x | <= 2x |",
        f"| peak RSS of the planning process | {rss:.0f} MiB | < 2048 MiB |",
        "",
        f"The run planned {counts.get('stores', 0)} stores, got back {counts.get('candidate_rows', 0):,} "
        f"candidate rows and planned {counts.get('lines', 0):,} lines ({counts.get('units', 0):,} units; "
        f"{counts.get('rebalancing_pairs', 0)} rebalancing pairs kept, "
        f"{counts.get('rebalancing_pairs_below_minimum', 0)} below the minimum shipment). "
        f"Stages of the last round: {', '.join(f'{name[:-3]} {ms:,} ms' for name, ms in timings.items())} "
        "(the rest: reading policies and open transfers, the deferred foreign-key checks of the new lines).",
    ]
    if approve:
        lines += [
            "",
            f"Then automatic approval (stock held at the origin, one savepoint per transfer, rolled back after): "
            f"planning {float(approve['plan_seconds']):.2f} s, approving {approve['approved_transfers']} transfers "
            f"/ {approve['lines']:,} lines {float(approve['approve_seconds']):.2f} s. Approval is per transfer "
            "(the stock engine's bulk path: one lock statement and one guarded UPDATE per 1,000 lines, plus "
            "the ledger rows), so it is not part of the planning figure.",
        ]
    rounds = ", ".join(
        f"{float(b['seconds']):.2f}/{float(p['seconds']):.2f}" for b, p in zip(baselines, plans, strict=True)
    )
    lines += [
        "",
        f"Each round (baseline/planning, s): {rounds}. Load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on a machine shared with other benchmarks: the ratio moves "
        "with the baseline's own noise (earlier runs under a load average of 10-38 measured 1.5x-2.4x "
        "before the last optimisations).",
        "",
        f"Result: **{verdict}** (measured {time.strftime('%Y-%m-%d')}, 2 CPU cores, PostgreSQL 15).",
    ]
    report = "\n".join(lines)
    print()
    print(report)
    if args.record:
        record(report)
        print(f"\nRecorded in {DOC.relative_to(ROOT)}")
    if verdict != "PASS" and not args.exit_zero:
        sys.exit(1)


if __name__ == "__main__":
    main()
