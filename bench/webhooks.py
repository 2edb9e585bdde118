"""Webhook intake: verify, store, enqueue, against a trivial Django JSON view served the same way.

    .venv/bin/python bench/webhooks.py [--orders 3000] [--clients 8]

Sends a simulated online-store stream (orders, updates before creates, cancellations, refunds,
customers) with 20% exact duplicates in shuffled order to one uvicorn process, measures requests/s
and p50/p99, and the same for GET /bench/trivial/ with the same clients. Then it processes every
stored delivery and checks that each event had exactly one effect: one stored row per webhook id,
every repeat counted as a duplicate, one customer per online customer id, one order per online order.
Target: intake >= 0.7x the trivial view, p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import LoadResult, bench_setup, ensure_stock, http_load, uvicorn_server

SECRET = "bench-webhook-secret"  # noqa: S105 - a throwaway secret for a local benchmark
SHOP = "omni-bench.myshopify.com"
ONLINE_LOCATION_ID = 77_000_000_001
BROKER = "redis://127.0.0.1:6379/15"


def post_load(*, base: str, deliveries: list, clients: int) -> LoadResult:
    import httpx

    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    shares = [deliveries[index::clients] for index in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def worker(share: list) -> None:
        mine: list[float] = []
        bad = 0
        with httpx.Client(base_url=base, timeout=30) as client:
            barrier.wait()
            for delivery in share:
                started = time.perf_counter()
                response = client.post(
                    "/webhooks/shopify/", content=delivery.body, headers=delivery.headers(secret=SECRET, shop=SHOP)
                )
                mine.append(time.perf_counter() - started)
                bad += response.status_code != 200
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return LoadResult(
        name="webhook intake (POST)",
        requests=len(latencies),
        seconds=time.perf_counter() - started,
        latencies=latencies,
        failures=failures[0],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    bench_setup()
    stock = ensure_stock(locations=50, variants=20000)
    from django.db.models import F

    from inventory.models import Variant
    from online.models import OnlineLocation, WebhookDelivery
    from online.services import delivery_process
    from online.simulator import CatalogueItem, OnlineStoreSimulator

    WebhookDelivery.objects.all().delete()
    OnlineLocation.objects.get_or_create(
        online_location_id=ONLINE_LOCATION_ID, defaults={"location_id": stock.location_ids[0], "name": "bench web"}
    )
    sample = stock.variant_ids[:500]
    Variant.objects.filter(pk__in=sample, online_inventory_item_id__isnull=True).update(
        online_inventory_item_id=F("pk") + 90_000_000_000, online_variant_id=F("pk") + 80_000_000_000
    )
    catalogue = [
        CatalogueItem(sku=sku, variant_id=vid, inventory_item_id=item, price=Decimal(price), title="Bench product")
        for sku, vid, item, price in Variant.objects.filter(pk__in=sample).values_list(
            "sku", "online_variant_id", "online_inventory_item_id", "price"
        )
    ]
    simulator = OnlineStoreSimulator(
        catalogue=catalogue,
        online_location_id=ONLINE_LOCATION_ID,
        rng=random.Random(11),
        order_id_base=int(time.time()) * 1000,
    )
    deliveries = list(simulator.stream(orders=args.orders, duplicate_share=0.2))
    unique = {delivery.webhook_id for delivery in deliveries}
    print(f"{len(deliveries)} deliveries ({len(deliveries) - len(unique)} duplicates), {args.clients} clients")

    env = {"SHOPIFY_WEBHOOK_SECRET": SECRET, "CELERY_BROKER_URL": BROKER}
    with uvicorn_server(extra_env=env) as base:
        http_load(name="warm-up", base=base, path_for=lambda rng: "/bench/trivial/", clients=2, seconds=2)
        intake = post_load(base=base, deliveries=deliveries, clients=args.clients)
        trivial = http_load(
            name="trivial JSON view (GET)",
            base=base,
            path_for=lambda rng: "/bench/trivial/",
            clients=args.clients,
            seconds=max(5.0, intake.seconds),
        )
    print(trivial.line())
    print(intake.line())
    ratio = intake.per_second / trivial.per_second
    print(f"ratio intake / trivial: {ratio:.2f} (target >= 0.70); p99 {intake.percentile(0.99) * 1000:.1f} ms "
          "(target < 100 ms)")  # fmt: skip

    import redis

    redis.Redis.from_url(BROKER).flushdb()  # the queued messages: processed in-process below instead
    started = time.perf_counter()
    for delivery_id in WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True):
        try:
            delivery_process(delivery_id=delivery_id)
        except Exception as exc:  # noqa: BLE001 - counted below as not processed
            print(f"  delivery {delivery_id}: {type(exc).__name__}: {exc}")
    processing = time.perf_counter() - started
    stored = WebhookDelivery.objects.count()
    duplicates = sum(WebhookDelivery.objects.values_list("duplicates", flat=True))
    statuses: dict[str, int] = {}
    for status in WebhookDelivery.objects.values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    print(f"processed {stored} deliveries in {processing:.1f} s: {statuses}")
    checks = {
        "one stored row per webhook id": stored == len(unique),
        "every repeat counted as a duplicate": duplicates == len(deliveries) - len(unique),
        "no delivery failed or errored": not (statuses.get("failed") or statuses.get("error")),
    }
    checks.update(effect_checks(simulator_orders=args.orders))
    for name, ok in checks.items():
        print(f"  {'ok ' if ok else 'FAIL'} {name}")
    if not all(checks.values()):
        raise SystemExit(1)


def effect_checks(*, simulator_orders: int) -> dict[str, bool]:
    """Effects counted once: a customer per online customer id, an order per online order."""
    from customers.models import CustomerIdentity

    online_customers = CustomerIdentity.objects.filter(kind="online_store").values("value").distinct().count()
    identities = CustomerIdentity.objects.filter(kind="online_store").count()
    checks = {"one customer identity per online customer": online_customers == identities}
    try:
        from online.sales_handlers import online_orders_count
    except ImportError:
        return checks
    checks["one order per online order"] = online_orders_count() == simulator_orders
    return checks


if __name__ == "__main__":
    main()
