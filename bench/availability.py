"""Availability lookups per second at 50 locations x 20,000 variants (a million stock levels).

    .venv/bin/python bench/availability.py [--seconds 10] [--clients 8] [--rounds 3] [--no-token-cache]

Serves Omni with uvicorn (one worker, with Redis at BENCH_REDIS_URL as in production: API tokens
are then checked from memory, omni.token_cache) on the bench database and measures
GET /api/v1/availability/?sku=<random> against a trivial Django JSON view served by the same
process, in alternating rounds. Reports requests/s, p50/p99 latency, the ratio (target >= 0.7)
and the queries one lookup costs.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (
    BENCH_REDIS_URL,
    CpuSnapshot,
    bench_setup,
    bench_user_token,
    ensure_stock,
    http_load,
    median,
    uvicorn_server,
)


def queries_per_lookup(token: str, sku: str, *, redis_url: str) -> tuple[int, int]:
    """Queries of a lookup with the token unknown to the process, then with it cached."""
    import time

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from omni import token_cache

    cache = token_cache.TokenCache(redis_url=redis_url, ttl=60, channel=settings.OMNI_AUTH_CHANNEL)
    token_cache._cache = cache
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    counts = []
    try:
        client.get("/api/v1/availability/", {"sku": sku})  # warm; starts the cache's listener
        deadline = time.monotonic() + 5
        while redis_url and not cache.get(token) and time.monotonic() < deadline:
            client.get("/api/v1/availability/", {"sku": sku})
            time.sleep(0.01)
        cache.clear()  # the token unknown to this process, then cached by that lookup
        for _ in range(2):
            with CaptureQueriesContext(connection) as queries:
                response = client.get("/api/v1/availability/", {"sku": sku})
            assert response.status_code == 200, response.content
            counts.append(len(queries))
    finally:
        cache.stop()
        token_cache._cache = None
    return counts[0], counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--locations", type=int, default=50)
    parser.add_argument("--variants", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-token-cache", action="store_true", help="look every token up in the database (no REDIS_URL)"
    )
    args = parser.parse_args()

    bench_setup()
    stock = ensure_stock(locations=args.locations, variants=args.variants)
    token = bench_user_token(role="store_associate")
    from django.db import connection

    from inventory.models import StockLevel

    levels = StockLevel.objects.count()
    sku = stock.skus[len(stock.skus) // 2]
    redis_url = "" if args.no_token_cache else BENCH_REDIS_URL
    first, cached = queries_per_lookup(token, sku, redis_url=redis_url)
    connection.close()

    print(f"Stock levels in the bench database: {levels:,}")
    print(
        f"Queries per availability lookup: {first} (token with user and roles, stock); "
        f"{cached} once the token is cached"
    )
    print(f"Token cache (omni.token_cache): {'on, Redis ' + redis_url if redis_url else 'off'}")
    print(f"uvicorn, 1 worker; {args.clients} keep-alive client threads; {args.rounds} x {args.seconds:.0f} s each")

    skus = stock.skus
    headers = {"Authorization": f"Token {token}"}
    trivial_rates, lookup_rates = [], []
    trivial_runs, lookup_runs = [], []
    with uvicorn_server(extra_env={"REDIS_URL": redis_url}) as base:
        # Warm both paths (connections, imports, plans).
        http_load(name="warm", base=base, path_for=lambda rng: "/bench/trivial/", clients=2, seconds=1)
        http_load(
            name="warm",
            base=base,
            path_for=lambda rng: f"/api/v1/availability/?sku={rng.choice(skus)}",
            headers=headers,
            clients=2,
            seconds=1,
        )
        for _ in range(args.rounds):
            before = CpuSnapshot.take()
            trivial = http_load(
                name="trivial JSON view",
                base=base,
                path_for=lambda rng: "/bench/trivial/",
                clients=args.clients,
                seconds=args.seconds,
            )
            after_trivial = CpuSnapshot.take()
            lookup = http_load(
                name="availability ?sku=random",
                base=base,
                path_for=lambda rng: f"/api/v1/availability/?sku={rng.choice(skus)}",
                headers=headers,
                clients=args.clients,
                seconds=args.seconds,
            )
            after_lookup = CpuSnapshot.take()
            print("  " + trivial.line())
            print("      CPU per request: " + after_trivial.per_request_ms(before, trivial.requests))
            print("  " + lookup.line())
            print("      CPU per request: " + after_lookup.per_request_ms(after_trivial, lookup.requests))
            trivial_rates.append(trivial.per_second)
            lookup_rates.append(lookup.per_second)
            trivial_runs.append(trivial)
            lookup_runs.append(lookup)
    ratio = median(lookup_rates) / median(trivial_rates)
    all_lookup = [latency for run in lookup_runs for latency in run.latencies]
    all_trivial = [latency for run in trivial_runs for latency in run.latencies]
    from bench.common import percentile

    print()
    print(
        f"trivial view:  median {median(trivial_rates):.0f} req/s, "
        f"p50 {percentile(all_trivial, 0.5) * 1000:.2f} ms, p99 {percentile(all_trivial, 0.99) * 1000:.2f} ms"
    )
    print(
        f"availability:  median {median(lookup_rates):.0f} req/s, "
        f"p50 {percentile(all_lookup, 0.5) * 1000:.2f} ms, p99 {percentile(all_lookup, 0.99) * 1000:.2f} ms"
    )
    print(f"ratio availability / trivial: {ratio:.2f} (target >= 0.70) -> {'PASS' if ratio >= 0.7 else 'MISS'}")
    failures = sum(run.failures for run in lookup_runs + trivial_runs)
    if failures:
        print(f"WARNING: {failures} requests did not answer 200")


if __name__ == "__main__":
    main()
