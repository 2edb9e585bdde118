"""Live screens: a transactional outbox (omni.LiveEvent) plus a wake-up signal.

`live_publish` writes the event in the caller's transaction, so an event exists exactly when the
change it describes committed (never before, never for a rolled-back change). After commit it
wakes the streaming web processes through Redis pub/sub when REDIS_URL is set; on the embedded
default they poll the table. The streaming side (server-sent events) lives in omni.live_stream.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction

from omni.models import LiveEvent

logger = logging.getLogger(__name__)
WAKE_CHANNEL = "omni:live"
_local = threading.local()


def live_publish(*, topic: str, payload: dict[str, Any]) -> LiveEvent:
    """Record a live event atomically with the caller's change; wake listeners after commit."""
    event = LiveEvent.objects.create(topic=topic, payload=payload)
    transaction.on_commit(partial(_wake, event.pk))
    return event


def redis_client() -> Any:
    """This thread's Redis client (REDIS_URL) with short timeouts, for publishing (wake-ups, auth changes)."""
    client = getattr(_local, "client", None)
    if client is None:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        _local.client = client
    return client


def _wake(event_id: int) -> None:
    if not settings.REDIS_URL:
        return  # the embedded default polls
    try:
        redis_client().publish(WAKE_CHANNEL, str(event_id))
    except Exception:
        logger.warning("live wake-up failed for event %s", event_id, exc_info=True)
