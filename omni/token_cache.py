"""API tokens checked from memory, revoked in every process as soon as a change commits.

An API client (the online store, a warehouse scanner) sends its token with every request; looking
it up (the token, its user, the user's roles and locations) was a database round trip on every
request. Each web process therefore keeps what that lookup returned, per token, and drops all of
it when anything it depends on changes:

- a change to a token, a user (their home location too), a group, who is in a group, or a user's
  other locations (Django signals) publishes on the Redis channel OMNI_AUTH_CHANNEL (`omni:auth`)
  after its transaction commits, and clears this process's cache at once;
- every web process listens on that channel in a background thread and clears its cache on each
  message; while it is not subscribed (starting, Redis down, reconnecting) nothing is served from
  memory, so a missed message can never leave a revoked token working;
- a lookup that was running when a change arrived is not stored (a generation number per process),
  so a read from before the change cannot outlive it;
- entries also expire after OMNI_TOKEN_CACHE_SECONDS (default 60), a bound for changes that bypass
  signals (a queryset `.update()`, SQL in a console) -- use the admin or the services for those.

Without REDIS_URL (the embedded default) or with OMNI_TOKEN_CACHE_SECONDS = 0 nothing is cached.
Only rows are kept, never model instances: each request gets its own user object. Unknown tokens
are never cached.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)
MAX_ENTRIES = 10_000
RETRY_SECONDS = 1.0
IRRELEVANT_FIELDS = {"last_login"}


class TokenCache:
    """Token key -> what its lookup returned, valid while this process hears every change."""

    def __init__(
        self, *, redis_url: str, ttl: float, channel: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.redis_url = redis_url
        self.ttl = ttl
        self.channel = channel
        self.clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._subscribed = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    # --- Reading and storing ------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return bool(self.redis_url) and self.ttl > 0

    def generation(self) -> int:
        """Read before a lookup; pass to `put` so a lookup that overlapped a change is not stored."""
        self._ensure_listening()
        return self._generation

    def get(self, key: str) -> Any | None:
        if not self.enabled or not self._subscribed.is_set():
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self.clock() >= expires:
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: str, value: Any, generation: int) -> None:
        if not self.enabled or not self._subscribed.is_set():
            return
        with self._lock:
            if generation != self._generation:
                return  # something changed while it was being read
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self.clock() + self.ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    # --- Hearing about changes ----------------------------------------------------------------------

    def _ensure_listening(self) -> None:
        if not self.enabled:
            return
        if self._pid != os.getpid():  # forked: the parent's thread did not come along
            self._pid = os.getpid()
            self._thread = None
            self._subscribed.clear()
            self.clear()
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._listen, name="omni-token-cache", daemon=True)
                    self._thread.start()

    def _listen(self) -> None:
        import redis

        while not self._stopped.is_set():
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2, health_check_interval=10)
            pubsub = client.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.subscribe(self.channel)
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=0.25)
                    if message is None:
                        continue
                    self.clear()
                    if message["type"] == "subscribe":
                        self._subscribed.set()
            except (redis.RedisError, OSError):
                logger.warning("token cache: lost the %s channel; serving tokens from the database", self.channel)
            finally:
                self._subscribed.clear()
                self.clear()
                pubsub.close()
                client.close()
            self._stopped.wait(RETRY_SECONDS)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


_cache: TokenCache | None = None


def token_cache() -> TokenCache:
    global _cache
    if _cache is None:
        _cache = TokenCache(
            redis_url=settings.REDIS_URL, ttl=settings.OMNI_TOKEN_CACHE_SECONDS, channel=settings.OMNI_AUTH_CHANNEL
        )
    return _cache


# --- Telling every process ------------------------------------------------------------------------


def auth_changed(*, update_fields: Any = None, **_: Any) -> None:
    """Signal receiver: after the change commits, clear this process's cache and tell the others."""
    if update_fields is not None and set(update_fields) <= IRRELEVANT_FIELDS:
        return  # a sign-in stamps last_login: nothing a token check reads
    transaction.on_commit(_announce)


def _announce() -> None:
    if _cache is not None:
        _cache.clear()
    if not settings.REDIS_URL:
        return
    from omni.live import redis_client

    try:
        redis_client().publish(settings.OMNI_AUTH_CHANNEL, "changed")
    except Exception:
        logger.warning(
            "token cache: could not announce an auth change; other processes may accept the old "
            "credentials for up to %s s",
            settings.OMNI_TOKEN_CACHE_SECONDS,
            exc_info=True,
        )


def connect_signals() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from rest_framework.authtoken.models import Token, TokenProxy

    user_model = get_user_model()
    for model in (Token, TokenProxy, user_model, Group):  # TokenProxy: the admin's tokens page
        post_save.connect(auth_changed, sender=model, dispatch_uid=f"omni.token_cache.save.{model.__name__}")
        post_delete.connect(auth_changed, sender=model, dispatch_uid=f"omni.token_cache.delete.{model.__name__}")
    for name in ("groups", "extra_locations"):  # roles, and the locations a user may act for
        through = user_model._meta.get_field(name).remote_field.through  # type: ignore[union-attr]
        m2m_changed.connect(auth_changed, sender=through, dispatch_uid=f"omni.token_cache.{name}")
