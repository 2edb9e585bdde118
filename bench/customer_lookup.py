"""Customer lookup-as-you-type at 100,000 customers: p50/p99 per kind of query (target < 100 ms).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/omni_customers_bench \\
        .venv/bin/python bench/customer_lookup.py [--customers 100000] [--queries 300]

Seeds N customers once (bulk_create; about 60% with a loyalty card) in the bench database
(bench.common: its own PostgreSQL database, never the development one), ANALYZEs, then times
`customers.selectors.customer_search(query=..., limit=10)` in-process for queries a till would
type: phone (full number, a 6-digit prefix, the last four digits), email (a prefix, the full
address), name (a first-name prefix, a surname, "first last") and loyalty card (full, a prefix).
It also times the same lookups through the API (GET /api/v1/customers/?q=, token auth, Django
test client: the whole request minus the network), and prints the query plans used.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import bench_setup, bench_user_token

SOURCE = "bench"
FIRST = (  # noqa: SIM905 - a compact word list
    "Ana Ben Carla Dev Elena Farah Gus Hana Ivan Jade Kai Lena Marco Nia Omar Pia Quinn Rosa Sam Tara Uma "
    "Vic Wes Xena Yara Zoe Aaron Bella Caleb Diana Ethan Fiona Gabe Holly Isaac Julia Kyle Laura Mason "
    "Nora Owen Paula Reid Sofia Theo Ursula Violet Will Yusuf Zara Amir Bianca Cyrus Dalia Emil Freya Gia "
    "Hugo Iris Jonah Kira Luca Maya Nico Olive Pablo Rhea Silas Tessa Vera Wade Ximena Yosef Zane Ada "
    "Boris Clara Dmitri Esme"
).split()
LAST = (  # noqa: SIM905 - a compact word list
    "Lopez Smith Nguyen Garcia Patel Kim Johnson Brown Martinez Davis Wilson Anderson Thomas Taylor Moore "
    "Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young "
    "Allen King Wright Scott Torres Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell "
    "Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris "
    "Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Cox "
    "Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez "
    "Castillo Sanders Patel Myers Long Ross Foster Jimenez Okafor Haddad Novak Kowalski Schmidt Rossi "
    "Dubois Jensen Silva Costa Sato Tanaka"
).split()
DOMAINS = ["example.com", "example.org", "example.net", "mail.test", "shop.test"]
AREA_CODES = ["512", "737", "214", "469", "713", "281", "210", "817", "972", "415"]


def seed(customers: int, rng: random.Random) -> None:
    import phonenumbers
    from django.db import connection, transaction

    from customers.models import Customer, CustomerIdentity, IdentityKind
    from customers.normalize import name_search_key

    have = Customer.objects.filter(source=SOURCE).count()
    if have >= customers:
        print(f"Bench customers already seeded: {have:,}")
        return
    if have:
        raise SystemExit(f"{have:,} bench customers exist, not {customers:,}: drop the bench database first.")
    started = time.perf_counter()
    phones: set[str] = set()
    batch: list[Customer] = []
    cards: list[str] = []

    def flush() -> None:
        with transaction.atomic():
            created = Customer.objects.bulk_create(batch, batch_size=5000)
            CustomerIdentity.objects.bulk_create(
                [
                    CustomerIdentity(customer=customer, kind=IdentityKind.LOYALTY_CARD, value=card)
                    for customer, card in zip(created, cards, strict=True)
                    if card
                ],
                batch_size=5000,
            )
        batch.clear()
        cards.clear()

    for n in range(customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        while True:
            national = f"{rng.choice(AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
            if national in phones:
                continue
            if phonenumbers.is_valid_number(phonenumbers.parse(national, "US")):
                break
        phones.add(national)
        name = f"{first} {last}"
        batch.append(
            Customer(
                name=name,
                name_search=name_search_key(name),
                email=f"{first}.{last}{n}@{rng.choice(DOMAINS)}".lower(),
                phone=f"+1{national}",
                phone_national=national,
                source=SOURCE,
            )
        )
        cards.append(f"OMNI{n:08d}" if rng.random() < 0.6 else "")
        if len(batch) >= 10_000:
            flush()
    if batch:
        flush()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
        cursor.execute("ANALYZE customers_customeridentity")
    print(f"Seeded {customers:,} customers in {time.perf_counter() - started:.1f} s")


def sample_queries(count: int, rng: random.Random) -> dict[str, list[str]]:
    from customers.models import Customer, CustomerIdentity

    rows = list(
        Customer.objects.filter(source=SOURCE).order_by("?").values_list("name", "email", "phone_national")[:count]
    )
    cards = list(CustomerIdentity.objects.order_by("?").values_list("value", flat=True)[:count])
    return {
        "phone, full": [f"({p[:3]}) {p[3:6]}-{p[6:]}" for _, _, p in rows],
        "phone, 6-digit prefix": [p[:6] for _, _, p in rows],
        "phone, last 4 digits": [p[-4:] for _, _, p in rows],
        "email, prefix": [e[: rng.randint(4, 9)] for _, e, _ in rows],
        "email, full": [e for _, e, _ in rows],
        "name, first-name prefix": [n.split()[0][:3] for n, _, _ in rows],
        "name, surname": [n.split()[1] for n, _, _ in rows],
        "name, first last": [n for n, _, _ in rows],
        "card, full": cards,
        "card, prefix": [c[:8] for c in cards],
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def time_selector(queries: list[str]) -> tuple[list[float], float]:
    from customers.selectors import customer_search

    for query in queries[:20]:
        customer_search(query=query, limit=10)  # warm caches and the connection
    timings, found = [], []
    for query in queries:
        started = time.perf_counter()
        results = customer_search(query=query, limit=10)
        timings.append((time.perf_counter() - started) * 1000)
        found.append(len(results))
    return timings, statistics.mean(found)


def time_api(queries: list[str], token: str) -> list[float]:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    for query in queries[:20]:
        client.get("/api/v1/customers/", {"q": query})
    timings = []
    for query in queries:
        started = time.perf_counter()
        response = client.get("/api/v1/customers/", {"q": query})
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content
    return timings


def show_plans(samples: dict[str, list[str]]) -> None:
    from django.core.exceptions import EmptyResultSet
    from django.db import connection

    from customers.selectors import _search_plan

    print("\nQuery plans (first query of each kind, each step of the search plan):")
    for kind, queries in samples.items():
        print(f"  {kind} ({queries[0]!r}):")
        for step in _search_plan(queries[0]):
            try:
                sql, params = step.queryset[:10].query.sql_with_params()
            except EmptyResultSet:
                print(f"    {step.label}: no query (nothing to look up)")
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {sql}", params)
                lines = [row[0] for row in cursor.fetchall()]
            scans = sorted({line.strip().split(" on ")[0] + " on " + line.split(" on ")[1].split()[0]
                            for line in lines if " on " in line and "Scan" in line})  # fmt: skip
            total = next((line.strip() for line in lines if line.strip().startswith("Execution Time")), "")
            print(f"    {step.label}: {', '.join(scans) or lines[0].strip()}  [{total}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300, help="per kind of query")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-plans", action="store_true")
    args = parser.parse_args()

    bench_setup()
    rng = random.Random(args.seed)
    seed(args.customers, rng)
    from django.db import connection

    from customers.models import Customer, CustomerIdentity

    print(
        f"Customers: {Customer.objects.count():,}; loyalty cards: {CustomerIdentity.objects.count():,}; "
        f"PostgreSQL {connection.cursor().connection.info.server_version}"
    )
    token = bench_user_token(role="store_associate")
    samples = sample_queries(args.queries, rng)
    print(f"\n{args.queries} queries per kind, limit 10; milliseconds")
    header = f"{'query':<26}{'sel p50':>9}{'sel p99':>9}{'sel max':>9}{'api p50':>9}{'api p99':>9}{'hits':>7}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for kind, queries in samples.items():
        selector, hits = time_selector(queries)
        api = time_api(queries, token)
        worst = max(worst, percentile(api, 99))
        print(
            f"{kind:<26}{percentile(selector, 50):>9.2f}{percentile(selector, 99):>9.2f}{max(selector):>9.2f}"
            f"{percentile(api, 50):>9.2f}{percentile(api, 99):>9.2f}{hits:>7.1f}"
        )
    print(f"\nWorst API p99: {worst:.1f} ms (target: results within 100 ms)")
    print(f"Load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if not args.no_plans:
        show_plans(samples)


if __name__ == "__main__":
    main()
