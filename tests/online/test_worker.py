"""Webhooks on a REAL Celery worker (Redis broker, the test database): stored deliveries are
processed by the worker once each; deliveries stored while no worker (or broker) took them are
picked up by the sweeper; nothing is lost or applied twice."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from online import queueing
from online.models import DeliveryStatus, WebhookDelivery
from online.services import deliveries_requeue_stuck
from tests.online.test_webhooks import PRODUCT
from tests.worker import Worker

pytestmark = [pytest.mark.celery_worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


def _wait_until_final(count: int, log: Path, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    final = [DeliveryStatus.PROCESSED, DeliveryStatus.STALE, DeliveryStatus.IGNORED]
    while time.monotonic() < deadline:
        if WebhookDelivery.objects.filter(status__in=final).count() == count:
            return
        time.sleep(0.2)
    statuses = list(WebhookDelivery.objects.values_list("status", "error"))
    pytest.fail(f"deliveries not processed: {statuses}\n{log.read_text()[-3000:] if log.exists() else ''}")


def _product(number: int, sku_prefix: str, *, base: int) -> dict:
    """A one-variant products/create payload with ids of its own (base + number, scaled)."""
    variant = {**PRODUCT["variants"][0], "id": base * 10 + number, "sku": f"{sku_prefix}-{number}", "barcode": None,
               "inventory_item_id": base * 100 + number}  # fmt: skip
    return {**PRODUCT, "id": base + number, "handle": f"{sku_prefix.lower()}-{number}", "variants": [variant]}


def test_worker_processes_each_stored_delivery_once_and_the_sweeper_recovers_lost_messages(
    send_webhook, broker, tmp_path
):
    from inventory.models import Variant

    # Stored while the broker lost the messages (flushed before any worker ran): only the rows remain.
    for number in range(3):
        send_webhook("products/create", _product(number, "LOST", base=900))
    queueing.flush()  # what the endpoint queued is in the broker...
    broker.flushdb()  # ...and lost there
    # Delivered normally, twice each (duplicates).
    for number in range(3):
        product = _product(number, "OK", base=800)
        send_webhook("products/create", product, webhook_id=f"ok-{number}")
        send_webhook("products/create", product, webhook_id=f"ok-{number}")
    WebhookDelivery.objects.filter(webhook_id__startswith="ok-").update(updated_at="2026-01-01T00:00:00Z")

    log = tmp_path / "worker.log"
    worker = Worker(log, OMNI_TESTING="1")
    try:
        WebhookDelivery.objects.exclude(webhook_id__startswith="ok-").update(updated_at="2026-01-01T00:00:00Z")
        assert deliveries_requeue_stuck(older_than_seconds=60) >= 3
        _wait_until_final(6, log)
    finally:
        worker.stop()

    assert WebhookDelivery.objects.count() == 6
    assert Variant.objects.filter(sku__startswith="LOST-").count() == 3
    assert Variant.objects.filter(sku__startswith="OK-").count() == 3
    assert sorted(WebhookDelivery.objects.values_list("attempts", flat=True)) == [1] * 6


def test_a_burst_of_deliveries_travels_as_one_message_and_each_is_processed_once(
    send_webhook, broker, tmp_path, settings
):
    from inventory.models import Variant

    settings.SHOPIFY_WEBHOOK_BATCH_MS = 3000  # five test-client posts on a loaded machine (1 s once was too short)
    for number in range(5):
        assert send_webhook("products/create", _product(number, "BURST", base=700)).status_code == 200
    deadline = time.monotonic() + 10
    while not broker.llen("celery") and time.monotonic() < deadline:
        time.sleep(0.05)

    messages = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    assert [message["headers"]["task"] for message in messages] == ["online.tasks.process_deliveries"]
    _args, kwargs, _embed = json.loads(base64.b64decode(messages[0]["body"]))
    assert sorted(kwargs["delivery_ids"]) == sorted(WebhookDelivery.objects.values_list("pk", flat=True))

    log = tmp_path / "worker.log"
    worker = Worker(log, OMNI_TESTING="1")
    try:
        _wait_until_final(5, log)
    finally:
        worker.stop()
    assert Variant.objects.filter(sku__startswith="BURST-").count() == 5
    assert sorted(WebhookDelivery.objects.values_list("attempts", flat=True)) == [1] * 5
