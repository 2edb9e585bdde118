"""The nightly insight run at 100,000 customers and 1,000,000 sales lines (target: < 2 min, < 2 GiB).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/omni_insights_bench \\
        .venv/bin/python bench/insights.py [--customers 100000] [--lines 1000000] [--stores 20] [--record]

Generates the sales history once in the bench database (its own PostgreSQL database, never the
development one; bench.common): N customers, orders and exactly M order lines over two years
(COPY, about a minute), stock levels with their receipt movements and some count losses, then
ANALYZEs. Customers behave as BG/NBD says they do (Poisson purchases at a gamma-distributed rate,
drop-out after a purchase with a beta-distributed probability), so the model fit is realistic.

Then, in the same run:
1. the nightly run (insights.services.insight_run_nightly) in a fresh child process, so its wall
   time and peak memory (ru_maxrss of that process: Python, numpy, the fetched rows) are its own;
2. a plain SQL GROUP BY over the same lines (orders per customer: count, sum, first and last
   date), fetched like the run fetches its rows, as the floor any aggregation has to pay.
--record appends the results to docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omni_insights_bench")

from bench.common import bench_setup, django_child_setup  # noqa: E402

STORE_PREFIX = "ins-"
SIZES = ("XS", "S", "M", "L", "XL")
SIZE_WEIGHTS = (0.08, 0.22, 0.35, 0.25, 0.10)
CATEGORIES = ("tops", "bottoms", "dresses", "outerwear", "shoes")
DAY = 86_400


# --- COPY with the model's own defaults --------------------------------------------------------------


def _text(value: Any) -> str:
    """A value in COPY text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def copy_into(model: Any, columns: dict[str, Sequence[str]], rows: int, *, now: dt.datetime) -> None:
    """COPY `rows` rows into the model's table. `columns` maps column -> already-COPY-formatted
    text values; every other column gets its field's default (auto_now fields get `now`), so the
    script keeps working when apps add columns with defaults. A NOT NULL column without a
    default that is not given is a schema change the bench must learn about: it stops."""
    from django.db import connection

    constants: dict[str, str] = {}
    for field in model._meta.concrete_fields:
        if field.column in columns or getattr(field, "generated", False):
            continue
        if field.primary_key:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            constants[field.column] = _text(now)
        else:
            default = field.get_default()  # "" for text fields without one
            if default is None and not field.null:
                raise SystemExit(f"{model._meta.label}.{field.name} needs a value: teach bench/insights.py about it.")
            constants[field.column] = _text(default)
    names = [*columns, *constants]
    varying = list(columns.values())
    tail = "\t".join(constants.values())
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {model._meta.db_table} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        chunk: list[str] = []
        for index in range(rows):
            head = "\t".join(values[index] for values in varying)
            chunk.append(f"{head}\t{tail}\n" if tail else f"{head}\n")
            if len(chunk) == 50_000:
                copy.write("".join(chunk))
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))


def _strings(values: Iterable[Any]) -> list[str]:
    return [_text(value) for value in values]


def _reset_sequences(*models: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            cursor.execute(f"SELECT setval({sequence}, COALESCE(MAX(id), 1)) FROM {table}")  # noqa: S608


# --- the data ---------------------------------------------------------------------------------------


def generate(*, customers: int, lines: int, stores: int, seed: int) -> dict[str, Any]:
    """Sales history, stock and counts; returns what was made. Skips when already there."""
    import numpy as np
    from django.db import connection, transaction
    from django.utils import timezone

    from customers.models import Customer
    from inventory.models import Location, Product, StockLevel, StockMovement, Variant
    from orders.models import Fulfilment, Order, OrderLine

    have = Customer.objects.count()
    have_lines = OrderLine.objects.count()
    if have or have_lines:
        if (have, have_lines) != (customers, lines):
            raise SystemExit(
                f"The bench database holds {have:,} customers and {have_lines:,} lines, not {customers:,} and "
                f"{lines:,}: drop it (dropdb {connection.settings_dict['NAME']}) or pick another BENCH_DATABASE_URL."
            )
        print(f"Sales history already there: {have:,} customers, {have_lines:,} lines.")
        return {"orders": Order.objects.count()}

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    now = timezone.now().replace(microsecond=0)
    today = now.replace(hour=0, minute=0, second=0)
    print(f"Generating {customers:,} customers and {lines:,} sales lines ...")
    with transaction.atomic():
        with connection.cursor() as cursor:
            # The generated rows reference each other correctly; skipping the per-row foreign-key
            # triggers (superuser, this transaction only) makes COPY several times faster.
            cursor.execute("SET LOCAL session_replication_role = replica")
        # Stores and a warehouse; a catalogue of 500 styles x 5 sizes.
        Location.objects.bulk_create(
            [Location(code=f"{STORE_PREFIX}{n:03d}", name=f"Insight store {n}", kind="store") for n in range(stores)]
            + [Location(code=f"{STORE_PREFIX}wh", name="Insight warehouse", kind="warehouse", sells_in_store=False)]
        )
        store_ids = np.array(
            Location.objects.filter(code__startswith=STORE_PREFIX, kind="store")
            .order_by("code")
            .values_list("pk", flat=True)
        )
        Product.objects.bulk_create(
            [
                Product(
                    style=f"INS{n:05d}",
                    name=f"Style {n}",
                    brand=f"Brand {n % 30}",
                    category=CATEGORIES[n % 5],
                    season="SS26" if n % 2 else "FW25",
                )
                for n in range(500)
            ]
        )
        products = list(Product.objects.filter(style__startswith="INS").order_by("style"))
        prices = rng.choice([19.0, 29.0, 39.0, 49.0, 69.0, 89.0, 129.0], size=len(products))
        Variant.objects.bulk_create(
            [
                Variant(
                    product=product,
                    sku=f"INS-{product.style}-{size}",
                    size=size,
                    colour="Black",
                    price=Decimal(f"{prices[i]:.2f}"),
                )
                for i, product in enumerate(products)
                for size in SIZES
            ]
        )
        variants = list(
            Variant.objects.filter(sku__startswith="INS-").order_by("sku").values_list("pk", "price", "size")
        )
        size_of = np.array([SIZES.index(size) for _, _, size in variants])
        variant_ids = np.array([pk for pk, _, _ in variants])
        variant_price = np.array([float(price) for _, price, _ in variants])
        variant_weight = np.array([SIZE_WEIGHTS[s] for s in size_of])
        variant_weight /= variant_weight.sum()

        # Customers: explicit ids 1..N.
        customer_ids = np.arange(1, customers + 1)
        consent = rng.random(customers) < 0.35
        copy_into(
            Customer,
            {
                "id": _strings(customer_ids.tolist()),
                "name": [f"Bench Customer {i}" for i in customer_ids.tolist()],
                "name_search": [f"bench customer {i}" for i in customer_ids.tolist()],
                "email": [f"c{i}@bench.example" for i in customer_ids.tolist()],
                "email_consent": _strings(consent.tolist()),
                "source": ["store"] * customers,
            },
            customers,
            now=now,
        )

        # Purchase histories as BG/NBD tells them: a customer first buys up to two years ago, then
        # buys at the arrival times of a Poisson process (rate ~ Gamma(0.8, 1/60 per day)) and,
        # after each repeat purchase, leaves for good with probability p ~ Beta(0.7, 3): the repeat
        # purchases are the first min(N(T), J) arrivals, J ~ Geometric(p).
        age = rng.integers(1, 730, customers)
        rate = rng.gamma(0.8, 1 / 60, customers)
        arrivals = rng.poisson(rate * age)
        survive = rng.geometric(rng.beta(0.7, 3.0, customers))
        owner = np.repeat(customer_ids, arrivals)
        at = rng.random(len(owner)) * np.repeat(age, arrivals)  # days after the first purchase
        order = np.lexsort((at, owner))
        owner, at = owner[order], at[order]
        starts = np.concatenate([[0], np.cumsum(arrivals)[:-1]])
        rank = np.arange(len(owner)) - np.repeat(starts, arrivals)
        keep = rank < np.repeat(survive, arrivals)
        repeat_owner, repeat_at = owner[keep], at[keep]
        order_customer = np.concatenate([customer_ids, repeat_owner])
        days_back = np.concatenate([age, age[repeat_owner - 1] - repeat_at]).astype(int)
        by_customer = np.argsort(order_customer, kind="stable")
        order_customer, days_back = order_customer[by_customer], np.maximum(days_back[by_customer], 1)
        # Spend per visit varies between customers (Gamma-Gamma's premise): a customer-level price level.
        price_level = np.clip(rng.gamma(4.0, 1 / 4.0, customers), 0.3, 3.0)
        orders = len(order_customer)
        home = rng.choice(store_ids, size=customers)
        order_location = home[order_customer - 1]
        anonymous = rng.random(orders) < 0.1  # 10% of sales are to walk-in customers
        # Between about 10:00 and 24:00 on the day `days_back` days before today.
        seconds = rng.integers(-50_000, -1, orders).tolist()
        placed = [today - dt.timedelta(days=d, seconds=s) for d, s in zip(days_back.tolist(), seconds, strict=True)]

        # Exactly `lines` lines over the orders (at least one each).
        extra = (
            rng.multinomial(lines - orders, np.full(orders, 1 / orders)) if lines > orders else np.zeros(orders, int)
        )
        per_order = 1 + extra
        line_order = np.repeat(np.arange(1, orders + 1), per_order)
        line_variant = rng.choice(len(variant_ids), size=lines, p=variant_weight)
        quantity = np.where(rng.random(lines) < 0.9, 1, 2)
        line_customer = order_customer[line_order - 1]
        unit_price = np.round(variant_price[line_variant] * price_level[line_customer - 1], 2)
        line_total = quantity * unit_price
        returned = np.where(rng.random(lines) < 0.03, quantity, 0)
        subtotal = np.zeros(orders)
        np.add.at(subtotal, line_order - 1, line_total)
        cancelled = rng.random(orders) < 0.02
        refunded = np.where(rng.random(orders) < 0.04, np.round(subtotal * 0.3, 2), 0.0)

        order_ids = np.arange(1, orders + 1)
        copy_into(
            Order,
            {
                "id": _strings(order_ids.tolist()),
                "channel": ["store"] * orders,
                "status": ["cancelled" if c else "collected" for c in cancelled.tolist()],
                "location_id": _strings(order_location.tolist()),
                "customer_id": [
                    r"\N" if a else str(c) for a, c in zip(anonymous.tolist(), order_customer.tolist(), strict=True)
                ],
                "subtotal": [f"{v:.2f}" for v in subtotal.tolist()],
                "total": [f"{v:.2f}" for v in subtotal.tolist()],
                "paid_total": [f"{v:.2f}" for v in subtotal.tolist()],
                "refunded_total": [f"{v:.2f}" for v in refunded.tolist()],
                "placed_at": _strings(placed),
            },
            orders,
            now=now,
        )
        locations_text = _strings(order_location.tolist())
        copy_into(
            Fulfilment,
            {
                "id": _strings(order_ids.tolist()),
                "order_id": _strings(order_ids.tolist()),
                "kind": ["take_now"] * orders,
                "status": ["collected"] * orders,
                "source_location_id": locations_text,
                "stock_location_id": locations_text,
            },
            orders,
            now=now,
        )
        line_location = _strings(order_location[line_order - 1].tolist())
        order_text = _strings(line_order.tolist())
        copy_into(
            OrderLine,
            {
                "order_id": order_text,
                "fulfilment_id": order_text,
                "variant_id": _strings(variant_ids[line_variant].tolist()),
                "sku": ["INS"] * lines,
                "name": ["Bench item"] * lines,
                "kind": ["take_now"] * lines,
                "source_location_id": line_location,
                "quantity": _strings(quantity.tolist()),
                "unit_price": [f"{v:.2f}" for v in unit_price.tolist()],
                "total": [f"{v:.2f}" for v in line_total.tolist()],
                "returned_quantity": _strings(returned.tolist()),
            },
            lines,
            now=now,
        )

        # Stock: a level per store and variant, the receipt that brought it (up to 40 weeks ago),
        # and count losses (one unit) at 2% of the levels over the last 13 weeks.
        pairs = [(int(s), int(v)) for s in store_ids for v in variant_ids]
        on_hand = rng.choice([0, 1, 2, 3, 5, 8, 12, 20], size=len(pairs))
        copy_into(
            StockLevel,
            {
                "location_id": [str(s) for s, _ in pairs],
                "variant_id": [str(v) for _, v in pairs],
                "on_hand": _strings(on_hand.tolist()),
            },
            len(pairs),
            now=now,
        )
        received = [now - dt.timedelta(days=int(d)) for d in rng.integers(7, 280, len(pairs)).tolist()]
        counts = rng.random(len(pairs)) < 0.02
        count_days = rng.integers(1, 91, len(pairs))
        rows = [
            (s, v, max(1, int(q)), "receipt", received[i], f"ins-receipt:{i}")
            for i, ((s, v), q) in enumerate(zip(pairs, on_hand.tolist(), strict=True))
        ]
        rows += [(s, v, -1, "count", now - dt.timedelta(days=int(count_days[i])), f"ins-count:{i}")
                 for i, (s, v) in enumerate(pairs) if counts[i]]  # fmt: skip
        copy_into(
            StockMovement,
            {
                "location_id": [str(r[0]) for r in rows],
                "variant_id": [str(r[1]) for r in rows],
                "state": ["on_hand"] * len(rows),
                "quantity": [str(r[2]) for r in rows],
                "reason": [r[3] for r in rows],
                "actor_label": ["system:bench"] * len(rows),
                "operation_key": [r[5] for r in rows],
                "idempotency_key": [r[5] for r in rows],
                "created_at": [_text(r[4]) for r in rows],
            },
            len(rows),
            now=now,
        )
        _reset_sequences(Customer, Order, Fulfilment)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  {orders:,} orders, {lines:,} lines, {len(pairs):,} stock levels in {time.perf_counter() - started:.0f} s")
    return {"orders": orders}


# --- measurements -----------------------------------------------------------------------------------


def nightly_in_child() -> None:
    """Run one nightly refresh in this (fresh) process and print its figures as JSON."""
    django_child_setup()
    from insights.services import insight_run_nightly

    started = time.perf_counter()
    run = insight_run_nightly(triggered_by="bench")
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "seconds": elapsed,
        "peak_mib": peak_kib / 1024,
        "customers": run.customers_scored,
        "timings": run.timings,
        "bgnbd": run.bgnbd,
        "gamma_gamma": run.gamma_gamma,
        "model_note": run.model_note,
        "anomalies": run.anomalies_found,
    }))  # fmt: skip


def plain_group_by() -> tuple[float, int]:
    """Orders per customer over the same lines: the plainest aggregation, fetched to Python."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT o.customer_id, COUNT(*), SUM(l.total), MIN(o.placed_at), MAX(o.placed_at)
            FROM orders_orderline l JOIN orders_order o ON o.id = l.order_id
            WHERE o.customer_id IS NOT NULL
            GROUP BY o.customer_id
            """
        )
        rows = cursor.fetchall()
    return time.perf_counter() - started, len(rows)


def record(markdown: str) -> None:
    path = ROOT / "docs" / "PERFORMANCE.md"
    if not path.exists():
        path.write_text("# Performance\n\nBenchmarks in `bench/`; each section says how to rerun it.\n")
    with path.open("a") as handle:
        handle.write(markdown)
    print(f"Appended to {path.relative_to(ROOT)}")


def _markdown(args: argparse.Namespace, made: dict[str, Any], results: list[dict[str, Any]], group_by: float) -> str:
    best = min(results, key=lambda r: r["seconds"])
    worst = max(results, key=lambda r: r["seconds"])
    verdict = "meets" if worst["seconds"] < 120 and worst["peak_mib"] < 2048 else "MISSES"
    bg, gg, steps = best["bgnbd"], best["gamma_gamma"], best["timings"]
    nan = float("nan")
    wall = f"{best['seconds']:.1f} s" + ("" if args.runs == 1 else f" best, {worst['seconds']:.1f} s worst")
    command = (
        f"BENCH_DATABASE_URL=... .venv/bin/python bench/insights.py --customers {args.customers} "
        f"--lines {args.lines} --runs {args.runs} --record"
    )
    today = dt.datetime.now(tz=dt.UTC).date().isoformat()
    rows = [
        (f"nightly run, wall time ({args.runs} run(s), each in a fresh process)", wall),
        ("- customers: the one SQL aggregation", f"{steps.get('customers_sql', 0):.1f} s"),
        ("- customers: RFM, BG/NBD + Gamma-Gamma fits, predictions, CLV", f"{steps.get('customers_models', 0):.1f} s"),
        ("- customers: COPY to a temporary table + one upsert", f"{steps.get('customers_write', 0):.1f} s"),
        ("- size curves (INSERT ... SELECT)", f"{steps.get('size_curves', 0):.1f} s"),
        ("- sell-through and cover (INSERT ... SELECT)", f"{steps.get('sell_through', 0):.1f} s"),
        ("- anomalies (two GROUP BYs)", f"{steps.get('anomalies', 0):.1f} s"),
        ("peak memory of the run process (ru_maxrss)", f"{worst['peak_mib']:.0f} MiB"),
        ("plain `GROUP BY customer` over the same lines, same run", f"{group_by:.2f} s"),
        ("customers scored", f"{best['customers']:,}"),
        (
            "BG/NBD fitted (simulated with r=0.8, alpha=60, a=0.7, b=3)",
            f"r={bg.get('r', nan):.3f}, alpha={bg.get('alpha_days', nan):.1f} days, "
            f"a={bg.get('a', nan):.3f}, b={bg.get('b', nan):.3f}",
        ),
        ("Gamma-Gamma fitted", f"p={gg.get('p', nan):.2f}, q={gg.get('q', nan):.2f}, v={gg.get('v', nan):.1f}"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (
        f"\n## Nightly insight run ({today})\n\n`{command}`\n\n"
        f"{args.customers:,} customers, {made['orders']:,} orders, {args.lines:,} sales lines, "
        f"{args.stores} stores x 2,500 variants of stock; {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, PostgreSQL on the same machine (shared with other work: the "
        f"plain GROUP BY row is the yardstick).\n\n| measure | result |\n|---|---|\n{table}\n\n"
        f"Target: under 2 minutes and 2 GiB on 2 cores: **{verdict}**.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=1, help="nightly runs to time (the best and worst are shown)")
    parser.add_argument("--record", action="store_true", help="append the results to docs/PERFORMANCE.md")
    parser.add_argument("--nightly-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nightly_only:
        nightly_in_child()
        return

    bench_setup()
    made = generate(customers=args.customers, lines=args.lines, stores=args.stores, seed=args.seed)
    from bench.common import server_environment

    results = []
    for _ in range(args.runs):
        # A day passes between two nightly runs: autovacuum has cleared the previous run's dead rows.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE insights_customerinsight, insights_sizedemand, insights_stockperformance")
        child = subprocess.run(
            [sys.executable, __file__, "--nightly-only"],
            env=server_environment(DATABASE_POOL="0"), cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if child.returncode:
            print(child.stdout, child.stderr)
            raise SystemExit("the nightly run failed")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        last = results[-1]
        print(f"nightly run: {last['seconds']:.1f} s, peak {last['peak_mib']:.0f} MiB, steps {last['timings']}")
    group_by_seconds, group_rows = plain_group_by()
    print(f"plain GROUP BY over the same lines: {group_by_seconds:.2f} s ({group_rows:,} customers)")

    markdown = _markdown(args, made, results, group_by_seconds)
    print(markdown)
    if args.record:
        record(markdown)


if __name__ == "__main__":
    main()
