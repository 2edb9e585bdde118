"""Endless-aisle orders per second through POST /api/v1/orders/ on the 1M-row stock network.

    .venv/bin/python bench/orders.py [--seconds 15] [--clients 16] [--rounds 3] [--workers 1]

Serves Omni with uvicorn on the bench database (50 locations x 20,000 variants, bench/common.py)
and, in alternating rounds with the same clients and the same server, measures:

- a trivial Django JSON view (the baseline), and
- placing orders: 5 lines from 2 locations - three taken now at a store, two shipped to the
  customer from the best source (the warehouse) - each POST with its own Idempotency-Key, paid by
  card, for a customer.

Reports orders/s, p50/p99 latency, the ratio to the trivial view (target >= 0.25), the queries
one order costs, and checks that nothing was oversold: no level below zero available, every
touched level equal to the sum of its ledger, and the warehouse's commitments equal to the
shipped units of the orders placed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (
    BENCH_REDIS_URL,
    LOCATION_PREFIX,
    CpuSnapshot,
    LoadResult,
    bench_setup,
    ensure_stock,
    http_load,
    median,
    uvicorn_server,
)

STORE_CODE = f"{LOCATION_PREFIX}001"
WAREHOUSE_CODE = f"{LOCATION_PREFIX}000"
USERNAME = "bench-orders"
CUSTOMER_EMAIL = "bench-orders@example.com"


def prepare() -> tuple[str, int, int, list[int], list[int]]:
    """The bench cashier (token), the store, the customer, and variants each location can sell."""
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from customers import services as customers
    from customers.models import Customer
    from inventory.models import Location, StockLevel
    from omni.actors import SystemActor
    from omni.models import User

    store = Location.objects.get(code=STORE_CODE)
    warehouse = Location.objects.get(code=WAREHOUSE_CODE)
    if not warehouse.ships_to_customers:
        Location.objects.filter(pk=warehouse.pk).update(ships_to_customers=True)
    user, created = User.objects.get_or_create(username=USERNAME, defaults={"home_location": store})
    if created:
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name="store_associate"))
    token, _ = Token.objects.get_or_create(user=user)
    customer = Customer.objects.filter(email=CUSTOMER_EMAIL).first() or customers.customer_create(
        actor=SystemActor("bench"), name="Bench Customer", email=CUSTOMER_EMAIL, phone=""
    )
    # Deep stock, so that the run measures selling rather than running out.
    here = list(
        StockLevel.objects.filter(location=store, available__gte=8)
        .order_by("variant_id")
        .values_list("variant_id", flat=True)
    )
    there = list(
        StockLevel.objects.filter(location=warehouse, available__gte=12)
        .exclude(variant_id__in=here)
        .order_by("variant_id")
        .values_list("variant_id", flat=True)
    )
    return token.key, store.pk, customer.pk, here, there


def order_body(rng: random.Random, store_id: int, customer_id: int, here: list[int], there: list[int]) -> dict:
    lines = [{"variant_id": v, "quantity": 1} for v in rng.sample(here, 3)]
    lines += [{"variant_id": v, "quantity": 1, "fulfilment": "ship"} for v in rng.sample(there, 2)]
    return {
        "location_id": store_id,
        "customer_id": customer_id,
        "contact_email": CUSTOMER_EMAIL,
        "ship_to": {"name": "Bench Customer", "line1": "1 Main St", "city": "Austin", "postcode": "78701"},
        "lines": lines,
        "tenders": [{"tender": "card", "amount": "245.00", "card_last4": "4242", "terminal_ref": "BENCH"}],
    }


def order_load(
    *, base: str, token: str, body_for, clients: int, seconds: float, run: str
) -> tuple[LoadResult, dict[int, int]]:
    """`clients` threads POSTing orders for `seconds`; returns the result and status counts."""
    import httpx

    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    counter = itertools.count()

    def worker(index: int) -> None:
        rng = random.Random(f"{run}:{index}")
        mine: list[float] = []
        seen: dict[int, int] = {}
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            barrier.wait()
            while time.perf_counter() < stop_at:
                body = body_for(rng)
                key = f"bench-{run}-{index}-{next(counter)}-{uuid.uuid4().hex[:8]}"
                started = time.perf_counter()
                response = client.post("/api/v1/orders/", json=body, headers={"Idempotency-Key": key})
                mine.append(time.perf_counter() - started)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    failures = sum(count for status, count in statuses.items() if status != 201)
    result = LoadResult(
        name="POST /api/v1/orders/", requests=len(latencies), seconds=elapsed, latencies=latencies, failures=failures
    )
    return result, statuses


def queries_per_order(token: str, body: dict) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    client.post(
        "/api/v1/orders/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"bench-warm-{uuid.uuid4().hex}"
    )
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/v1/orders/",
            body,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"bench-count-{uuid.uuid4().hex}",
        )
    assert response.status_code == 201, response.content
    return len(queries)


def check_no_oversell(store_id: int, variant_ids: set[int]) -> list[str]:
    """Problems found (empty: none): negative availability, levels that disagree with the ledger,
    warehouse commitments that disagree with the shipped units of the orders placed."""
    from django.db.models import Sum

    from inventory.models import Location, StockLevel, StockMovement
    from orders.models import FulfilmentKind, OrderLine

    problems = []
    warehouse = Location.objects.get(code=WAREHOUSE_CODE)
    bench_ids = list(Location.objects.filter(code__startswith=LOCATION_PREFIX).values_list("pk", flat=True))
    negative = StockLevel.objects.filter(location_id__in=bench_ids, available__lt=0).count()
    if negative:
        problems.append(f"{negative} levels below zero available")
    levels = StockLevel.objects.filter(variant_id__in=variant_ids, location_id__in=[store_id, warehouse.pk])
    ledger = {
        (row["location_id"], row["variant_id"], row["state"]): row["total"]
        for row in StockMovement.objects.filter(variant_id__in=variant_ids, location_id__in=[store_id, warehouse.pk])
        .values("location_id", "variant_id", "state")
        .annotate(total=Sum("quantity"))
    }
    drift = 0
    for level in levels:
        for state in ("on_hand", "committed", "reserved"):
            if ledger.get((level.location_id, level.variant_id, state), 0) != getattr(level, state):
                drift += 1
    if drift:
        problems.append(f"{drift} level states differ from the ledger")
    shipped_units = (
        OrderLine.objects.filter(
            order__location_id=store_id, kind=FulfilmentKind.SHIP, source_location_id=warehouse.pk
        ).aggregate(units=Sum("quantity"))["units"]
        or 0
    )
    committed = StockLevel.objects.filter(location=warehouse).aggregate(units=Sum("committed"))["units"] or 0
    if committed != shipped_units:
        problems.append(f"warehouse committed {committed} != shipped units ordered {shipped_units}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--locations", type=int, default=50)
    parser.add_argument("--variants", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    bench_setup()
    ensure_stock(locations=args.locations, variants=args.variants)
    from django.db import connection

    from inventory.models import StockLevel

    token, store_id, customer_id, here, there = prepare()
    levels = StockLevel.objects.count()
    queries = queries_per_order(token, order_body(random.Random(0), store_id, customer_id, here, there))
    connection.close()
    print(f"Stock levels in the bench database: {levels:,}")
    print(f"Variants deep enough: {len(here):,} at the store, {len(there):,} at the warehouse")
    print(f"Queries per order (token auth, sourcing, order, lines, payment, stock, events): {queries}")
    print(
        f"uvicorn, {args.workers} worker(s); {args.clients} keep-alive client threads; "
        f"{args.rounds} x {args.seconds:.0f} s each"
    )

    def body_for(rng: random.Random) -> dict:
        return order_body(rng, store_id, customer_id, here, there)

    trivial_runs, order_runs, all_statuses = [], [], {}
    # With Redis, as in production: API tokens checked from memory, live wake-ups published.
    with uvicorn_server(workers=args.workers, extra_env={"REDIS_URL": BENCH_REDIS_URL}) as base:
        http_load(name="warm", base=base, path_for=lambda rng: "/bench/trivial/", clients=2, seconds=1)
        order_load(base=base, token=token, body_for=body_for, clients=2, seconds=2, run="warm")
        for round_ in range(args.rounds):
            before = CpuSnapshot.take()
            trivial = http_load(
                name="trivial JSON view",
                base=base,
                path_for=lambda rng: "/bench/trivial/",
                clients=args.clients,
                seconds=args.seconds,
            )
            after_trivial = CpuSnapshot.take()
            orders, statuses = order_load(
                base=base,
                token=token,
                body_for=body_for,
                clients=args.clients,
                seconds=args.seconds,
                run=f"r{round_}-{uuid.uuid4().hex[:6]}",
            )
            for status, count in statuses.items():
                all_statuses[status] = all_statuses.get(status, 0) + count
            trivial_runs.append(trivial)
            order_runs.append(orders)
            after_orders = CpuSnapshot.take()
            print(f"  round {round_ + 1}: {trivial.line()}")
            print("      CPU per request: " + after_trivial.per_request_ms(before, trivial.requests))
            print(f"  round {round_ + 1}: {orders.line()}  statuses {statuses}")
            print("      CPU per order: " + after_orders.per_request_ms(after_trivial, orders.requests))

    trivial_rate = median([run.per_second for run in trivial_runs])
    order_rate = median([run.per_second for run in order_runs])
    latencies = [latency for run in order_runs for latency in run.latencies]
    from bench.common import percentile

    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    problems = check_no_oversell(store_id, set(here) | set(there))
    ratio = order_rate / trivial_rate if trivial_rate else 0.0
    print()
    print(f"trivial JSON view   {trivial_rate:8.1f} req/s (median of rounds)")
    print(f"orders              {order_rate:8.1f} orders/s (median of rounds)   p50 {p50:.1f} ms   p99 {p99:.1f} ms")
    print(f"ratio               {ratio:.3f}  (target >= 0.25)")
    print(f"statuses            {dict(sorted(all_statuses.items()))}")
    verdict = problems or "none: levels >= 0, ledger == levels, commitments == orders"
    print(f"oversell check      {verdict}")


if __name__ == "__main__":
    main()
