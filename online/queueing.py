"""Queueing stored deliveries for the worker: one Celery message per burst, not one per delivery.

A Celery publish costs the web process about as much CPU as the rest of a webhook request (the
row's INSERT included), and the online store sends in bursts. So the endpoint hands the stored
row's id to a per-process batcher and answers; a daemon thread waits `SHOPIFY_WEBHOOK_BATCH_MS`
after the first id, then publishes every id gathered meanwhile as one `process_deliveries`
message. The row is durable before the answer: an id lost from the buffer (the process died, the
broker was down) is only a late delivery, requeued by the sweeper (`requeue_stuck_deliveries`).

`SHOPIFY_WEBHOOK_BATCH_MS = 0`, or eager Celery, sends each id at once as its own
`process_delivery` message.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Sequence

from django.conf import settings

logger = logging.getLogger(__name__)

MAX_BATCH = 500  # ids per message; a larger burst (or a sweep) goes as several messages


def publish(delivery_ids: Sequence[int]) -> None:
    """Send ids to the worker, MAX_BATCH per message. A broker error is logged: the sweeper requeues."""
    from .tasks import process_deliveries

    ids = list(delivery_ids)
    for start in range(0, len(ids), MAX_BATCH):
        chunk = ids[start : start + MAX_BATCH]
        try:
            process_deliveries.delay(delivery_ids=chunk)
        except Exception:
            logger.warning("could not queue deliveries %s; the sweeper will", chunk, exc_info=True)


class _Batcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = threading.Event()
        self._ids: list[int] = []
        self._pid = 0  # the process whose thread runs; a forked child starts its own

    def add(self, delivery_id: int) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._ids = []  # a parent's ids are the parent's to send
                self._pending = threading.Event()
                threading.Thread(target=self._run, name="omni-webhook-queue", daemon=True).start()
            self._ids.append(delivery_id)
            self._pending.set()

    def _take(self) -> list[int]:
        with self._lock:
            ids, self._ids = self._ids, []
            self._pending.clear()
        return ids

    def _run(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(settings.SHOPIFY_WEBHOOK_BATCH_MS / 1000)
            ids = self._take()
            if ids:
                publish(ids)

    def flush(self) -> None:
        """Publish what is buffered now (at exit; tests)."""
        if self._pid == os.getpid():
            ids = self._take()
            if ids:
                publish(ids)


_batcher = _Batcher()
atexit.register(_batcher.flush)


def queue_one(delivery_id: int) -> None:
    """Send one delivery on its own (`process_delivery`, with its retries): replays, unbatched mode."""
    from .tasks import process_delivery

    try:
        process_delivery.delay(delivery_id=delivery_id)
    except Exception:
        logger.warning("could not queue delivery %s; the sweeper will", delivery_id, exc_info=True)


def enqueue(delivery_id: int) -> None:
    """Queue one stored delivery for processing (call it after its row committed)."""
    if settings.SHOPIFY_WEBHOOK_BATCH_MS <= 0 or settings.CELERY_TASK_ALWAYS_EAGER:
        queue_one(delivery_id)
    else:
        _batcher.add(delivery_id)


def flush() -> None:
    _batcher.flush()
