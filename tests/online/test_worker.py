"""Webhooks on a REAL Celery worker (Redis broker, the test database): stored deliveries are
processed by the worker once each; deliveries stored while no worker (or broker) took them are
picked up by the sweeper; nothing is lost or applied twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from online.models import DeliveryStatus, WebhookDelivery
from online.services import deliveries_requeue_stuck
from tests.online.test_webhooks import PRODUCT
from tests.transfers.test_celery_worker import Worker

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


def test_worker_processes_each_stored_delivery_once_and_the_sweeper_recovers_lost_messages(
    send_webhook, broker, tmp_path
):
    from inventory.models import Variant

    # Stored while the broker lost the messages (flushed before any worker ran): only the rows remain.
    for number in range(3):
        product = {**PRODUCT, "id": 900 + number, "handle": f"tee-{number}",
                   "variants": [{**PRODUCT["variants"][0], "id": 9000 + number, "sku": f"LOST-{number}",
                                 "barcode": None, "inventory_item_id": 90000 + number}]}  # fmt: skip
        send_webhook("products/create", product)
    broker.flushdb()
    # Delivered normally, twice each (duplicates).
    for number in range(3):
        product = {**PRODUCT, "id": 800 + number, "handle": f"shirt-{number}",
                   "variants": [{**PRODUCT["variants"][0], "id": 8000 + number, "sku": f"OK-{number}", "barcode": None,
                                 "inventory_item_id": 80000 + number}]}  # fmt: skip
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
