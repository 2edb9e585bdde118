import random
from collections import Counter
from decimal import Decimal

import pytest

from online import hmac
from online.models import WebhookDelivery
from online.simulator import CatalogueItem, OnlineStoreSimulator

CATALOGUE = [
    CatalogueItem(sku=f"SKU-{n}", variant_id=n, inventory_item_id=1000 + n, price=Decimal("20.00"), title="Tee")
    for n in range(10)
]


def test_stream_mixes_topics_duplicates_and_out_of_order_updates():
    simulator = OnlineStoreSimulator(catalogue=CATALOGUE, online_location_id=1, rng=random.Random(3))

    deliveries = list(simulator.stream(orders=200, duplicate_share=0.2))

    topics = Counter(d.topic for d in deliveries)
    assert {"customers/create", "orders/create", "orders/updated", "orders/cancelled", "refunds/create"} <= set(topics)
    unique = {d.webhook_id for d in deliveries}
    assert len(deliveries) - len(unique) == int(len(unique) * 0.2)
    assert all(hmac.verify(d.body, d.headers(secret="s", shop="x")["X-Shopify-Hmac-Sha256"], ["s"]) for d in deliveries)
    assert b"\\/" in next(d.body for d in deliveries if d.topic == "orders/create")


@pytest.mark.django_db
def test_simulated_stream_is_stored_once_per_webhook_id(client, settings):
    settings.SHOPIFY_WEBHOOK_SECRETS = ["s"]
    simulator = OnlineStoreSimulator(catalogue=CATALOGUE, online_location_id=1, rng=random.Random(4))
    deliveries = list(simulator.stream(orders=20))

    statuses = Counter()
    for delivery in deliveries:
        headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in delivery.headers(secret="s", shop="x").items()}
        headers.pop("HTTP_CONTENT_TYPE")
        response = client.post("/webhooks/shopify/", data=delivery.body, content_type="application/json", **headers)
        statuses[response.json()["status"]] += 1

    assert WebhookDelivery.objects.count() == len({d.webhook_id for d in deliveries}) == statuses["accepted"]
    assert statuses["duplicate"] == len(deliveries) - statuses["accepted"]
