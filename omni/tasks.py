"""Platform tasks: a ping that proves the web -> broker -> worker pipeline works."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

PING_KEY = "omni:ping:{token}"
PING_TTL_SECONDS = 300


@shared_task(name="omni.tasks.ping")
def ping(token: str) -> str:
    """Record that a worker ran this task (`ping_worker` and tests wait for the cache key)."""
    now = timezone.now().isoformat()
    cache.set(PING_KEY.format(token=token), now, timeout=PING_TTL_SECONDS)
    logger.info("pong %s", token)
    return now


def ping_result(token: str) -> str | None:
    """When the worker answered the ping `token` (ISO time), or None while it has not."""
    value = cache.get(PING_KEY.format(token=token))
    return value if isinstance(value, str) else None
