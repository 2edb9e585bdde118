"""Live screens, the streaming side: server-sent events (SSE) fed by the LiveEvent outbox.

How a change reaches a screen
-----------------------------
1. A service writes its change and a LiveEvent row in one transaction (omni.live.live_publish),
   so an event exists exactly when its change committed.
2. After commit, omni.live publishes the event id on the Redis channel `omni:live` (REDIS_URL set).
   Without Redis (the embedded default) nothing is published: the hubs poll the table.
3. Every web process runs one `LiveHub` (an asyncio task, started by the first stream and stopped
   after a minute without streams). It waits for a Redis wake-up (or polls every 250 ms), reads
   every new LiveEvent with ONE query for all its clients, and puts a pre-encoded SSE message in
   the queue of each stream subscribed to a key the event names.
4. `live_stream` (GET /live/stream/?topics=variant:12,location:3) is an async view returning a
   StreamingHttpResponse over an async generator that drains its queue. The page reacts with
   htmx's SSE extension (`hx-trigger="sse:stock-12"`) by re-fetching its fragment, so what the
   screen shows is always read from the database after the commit.

Keys and SSE event names (topic "stock", payload {"levels": [[location_id, variant_id], ...]}):
    variant:<id>   ->  event "stock-<variant_id>"
    location:<id>  ->  event "stock-location-<location_id>"
Each message carries `id: <LiveEvent id>`; a reconnecting EventSource sends it back as
Last-Event-ID and gets what it missed (the page also passes `since=<latest id at render time>`,
so a change committed between the render and the connection is not lost).

Outbox ids are taken at insert time but become visible at commit time, so a higher id can be seen
before a lower one. The hub remembers ids it skipped ("gaps") for a minute and asks for them again
with every read, so a slow transaction's event is still delivered when it commits.

Under WSGI a stream would tie up a worker thread forever, so the view answers 204 there (an
EventSource stops reconnecting on 204): run Omni under ASGI (uvicorn) for live screens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections, connection
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from omni.live import WAKE_CHANNEL
from omni.models import LiveEvent
from omni.roles import STOCK_STAFF, can_act_at, has_role

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 0.25  # without Redis
SAFETY_READ_SECONDS = 2.0  # with Redis: read anyway in case a wake-up was lost
IDLE_STOP_SECONDS = 60.0
GAP_SECONDS = 60.0  # how long a skipped id may still commit
MAX_GAPS = 1000
READ_BATCH = 500
BACKLOG_LIMIT = 1000
QUEUE_SIZE = 2000
MAX_KEYS = 200
RETENTION = timedelta(hours=1)
HEARTBEAT = b": keep-alive\n\n"
REDIS_RETRY_SECONDS = 2.0


# --- Keys and messages -----------------------------------------------------------------------


def parse_keys(raw: str) -> frozenset[str]:
    """`variant:12,location:3` -> the set of keys. Raises ValueError on anything else."""
    keys = set()
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        kind, _, number = item.partition(":")
        if kind not in {"variant", "location"} or not (number.isascii() and number.isdigit()) or len(number) > 18:
            raise ValueError(f"Unknown live topic {item[:40]!r}.")
        keys.add(f"{kind}:{int(number)}")
    if not keys:
        raise ValueError("Name at least one topic, e.g. topics=variant:12.")
    if len(keys) > MAX_KEYS:
        raise ValueError(f"At most {MAX_KEYS} topics per stream.")
    return frozenset(keys)


def sse_message(*, event_id: int, name: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"))
    return f"id: {event_id}\nevent: {name}\ndata: {body}\n\n".encode()


def event_messages(event_id: int, topic: str, payload: Any) -> dict[str, bytes]:
    """The SSE message for each key an event names, encoded once for every client."""
    if topic != "stock" or not isinstance(payload, dict):
        return {}
    reason = payload.get("reason", "")
    by_key: dict[str, list[list[int]]] = defaultdict(list)
    for level in payload.get("levels", []):
        try:
            location_id, variant_id = int(level[0]), int(level[1])
        except (TypeError, ValueError, IndexError):
            continue
        by_key[f"variant:{variant_id}"].append([location_id, variant_id])
        by_key[f"location:{location_id}"].append([location_id, variant_id])
    messages = {}
    for key, levels in by_key.items():
        kind, _, number = key.partition(":")
        name = f"stock-{number}" if kind == "variant" else f"stock-location-{number}"
        messages[key] = sse_message(event_id=event_id, name=name, data={"levels": levels, "reason": reason})
    return messages


# --- The per-process hub ---------------------------------------------------------------------


@dataclass(eq=False)
class Subscriber:
    keys: frozenset[str]
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False

    def deliver(self, message: bytes) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # A client this far behind is gone or stuck: end its stream; a live browser
            # reconnects with Last-Event-ID and catches up from the table.
            self.dropped = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)


Row = tuple[int, str, Any]


def _read_sync(after: int, gaps: list[int]) -> list[Row]:
    close_old_connections()  # this thread lives long: honour CONN_MAX_AGE and health checks
    condition = Q(pk__gt=after)
    if gaps:
        condition |= Q(pk__in=gaps)
    return list(LiveEvent.objects.filter(condition).order_by("pk").values_list("pk", "topic", "payload")[:READ_BATCH])


def _recent_ids_sync() -> list[int]:
    close_old_connections()
    return sorted(LiveEvent.objects.order_by("-pk").values_list("pk", flat=True)[:200])


def _backlog_sync(since: int) -> list[Row]:
    close_old_connections()
    return list(
        LiveEvent.objects.filter(pk__gt=since).order_by("pk").values_list("pk", "topic", "payload")[:BACKLOG_LIMIT]
    )


class LiveHub:
    """Fans committed LiveEvents out to the streams of one process (one event loop).

    All database work runs on one dedicated thread (one connection per process); the loop never
    blocks on it. `reads` counts table reads (one per wake-up, whatever the number of clients).
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.last_id = 0
        self.reads = 0
        self.running = False
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._everyone: set[Subscriber] = set()
        self._count = 0
        self._last_heartbeat = time.monotonic()
        self._gaps: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._generation = 0
        self._redis_ok = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omni-live")

    # -- subscriptions
    @property
    def client_count(self) -> int:
        return self._count

    async def subscribe(self, keys: Iterable[str]) -> Subscriber:
        """Register a stream, start the hub if needed, and wait until it knows where the table ends."""
        subscriber = Subscriber(frozenset(keys))
        for key in subscriber.keys:
            self._subscribers[key].add(subscriber)
        self._everyone.add(subscriber)
        self._count += 1
        if not self.running:
            self.running = True
            self._generation += 1
            self._ready.clear()
            self._task = self.loop.create_task(self._run(self._generation), name="omni-live-hub")
        await self._ready.wait()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._everyone.discard(subscriber)
        removed = False
        for key in subscriber.keys:
            group = self._subscribers.get(key)
            if group and subscriber in group:
                group.discard(subscriber)
                removed = True
                if not group:
                    del self._subscribers[key]
        if removed:
            self._count -= 1

    def wake(self) -> None:
        self._wake.set()

    async def db(self, function: Any, *args: Any) -> Any:
        return await self.loop.run_in_executor(self._executor, function, *args)

    # -- the loop
    async def _start(self) -> None:
        """Learn where the table ends; ids missing among the latest 200 may still commit."""
        ids = await self.db(_recent_ids_sync)
        self.reads += 1
        self.last_id = ids[-1] if ids else 0
        now = time.monotonic()
        present = set(ids)
        self._gaps = {i: now for i in range(ids[0], self.last_id) if i not in present} if ids else {}

    async def _run(self, generation: int) -> None:
        redis_task: asyncio.Task[None] | None = None
        try:
            self._redis_ok = False
            if settings.REDIS_URL:
                redis_task = self.loop.create_task(self._listen_redis(), name="omni-live-redis")
            await self._start()
            self._ready.set()
            idle_since: float | None = None
            while True:
                timeout = SAFETY_READ_SECONDS if self._redis_ok else POLL_SECONDS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
                try:
                    await self._read_and_fan_out()
                except Exception:
                    logger.warning("live hub read failed; retrying", exc_info=True)
                    await self.db(connection.close)
                    await asyncio.sleep(POLL_SECONDS)
                if self._count:
                    idle_since = None
                    self._heartbeat()
                    continue
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= IDLE_STOP_SECONDS:
                    self.running = False  # decided with no await since the check: a new stream restarts it
                    return
        finally:
            if self._generation == generation:
                self.running = False
                self._ready.set()  # never leave a subscriber waiting on a hub that died
            if redis_task is not None:
                redis_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await redis_task

    async def _read_and_fan_out(self) -> None:
        while True:
            self._expire_gaps()
            rows: list[Row] = await self.db(_read_sync, self.last_id, sorted(self._gaps))
            self.reads += 1
            self._advance([row[0] for row in rows])
            for event_id, topic, payload in rows:
                self.publish_local(event_id, topic, payload)
            if len(rows) < READ_BATCH:
                return

    def publish_local(self, event_id: int, topic: str, payload: Any) -> None:
        """Hand one event to the subscribers of this process (the hub's fan-out)."""
        for key, message in event_messages(event_id, topic, payload).items():
            for subscriber in self._subscribers.get(key, ()):
                subscriber.deliver(message)

    def _heartbeat(self) -> None:
        """Every HEARTBEAT_SECONDS, a comment line to every stream (one timer for all, not one each):
        proxies keep the connection open and a vanished client is noticed when the write fails."""
        now = time.monotonic()
        if now - self._last_heartbeat < HEARTBEAT_SECONDS:
            return
        self._last_heartbeat = now
        for subscriber in self._everyone:
            if subscriber.queue.empty():
                subscriber.deliver(HEARTBEAT)

    def _advance(self, ids: list[int]) -> None:
        if not ids:
            return
        now = time.monotonic()
        seen = set(ids)
        for event_id in ids:
            self._gaps.pop(event_id, None)
        newest = max(ids)
        if newest > self.last_id:
            start = max(self.last_id + 1, newest - MAX_GAPS)
            for missing in range(start, newest):
                if missing not in seen:
                    self._gaps[missing] = now
            self.last_id = newest
        if len(self._gaps) > MAX_GAPS:
            for stale in sorted(self._gaps)[: len(self._gaps) - MAX_GAPS]:
                del self._gaps[stale]

    def _expire_gaps(self) -> None:
        cutoff = time.monotonic() - GAP_SECONDS
        for gap in [gap for gap, noticed in self._gaps.items() if noticed < cutoff]:
            del self._gaps[gap]

    async def _listen_redis(self) -> None:
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(WAKE_CHANNEL)
                self._redis_ok = True
                self._wake.set()  # anything published while we were not listening is in the table
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("live hub lost Redis; polling until it is back", exc_info=True)
            finally:
                self._redis_ok = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(REDIS_RETRY_SECONDS)

    async def aclose(self) -> None:
        """Stop the hub and release its database connection (tests, shutdown)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.db(connection.close)
        self._executor.shutdown(wait=True)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveHub] = weakref.WeakKeyDictionary()
_latest: LiveHub | None = None  # the hub created last (tests and benchmarks look at it)


def get_hub() -> LiveHub:
    """This process's hub for the running event loop (uvicorn runs one loop per process)."""
    global _latest
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = _latest = LiveHub()
    return hub


async def stop_hub() -> None:
    """Stop the running loop's hub and release its database connection (ASGI lifespan shutdown)."""
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.aclose()


# --- The endpoint ----------------------------------------------------------------------------


async def _stream(keys: frozenset[str], since: int | None) -> AsyncIterator[bytes]:
    hub = get_hub()
    subscriber = await hub.subscribe(keys)
    try:
        yield b"retry: 1000\n: connected\n\n"
        if since is not None and (not hub.running or since < hub.last_id):
            # What happened between the page render (or the last message received) and now.
            for event_id, topic, payload in await hub.db(_backlog_sync, since):
                messages = event_messages(event_id, topic, payload)
                missed = b"".join(message for key, message in messages.items() if key in keys)
                if missed:
                    yield missed
        while True:
            # No timeout of its own: the hub sends the heartbeats (one timer for every stream).
            batch = [await subscriber.queue.get()]
            while not subscriber.queue.empty():
                batch.append(subscriber.queue.get_nowait())
            if None in batch:
                return  # dropped as too slow: the browser reconnects with Last-Event-ID
            yield b"".join(item for item in batch if item is not None)
    finally:
        hub.unsubscribe(subscriber)


def _authorise(user: Any, keys: frozenset[str]) -> str | None:
    """None when the user may follow these keys, else the reason they may not."""
    if not has_role(user, *STOCK_STAFF):
        return "Live stock updates are for store and warehouse staff."
    for key in keys:
        kind, _, number = key.partition(":")
        if kind == "location" and not can_act_at(user, int(number)):
            return "You cannot follow that location."
    if not connection.in_atomic_block:
        # The stream holds this request's thread for as long as it is open: do not let it hold a
        # database connection too (500 screens would be 500 connections).
        connection.close()
    return None


def _since(request: HttpRequest) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("since") or ""
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


@require_GET
async def live_stream(request: HttpRequest) -> HttpResponseBase:
    """GET /live/stream/?topics=variant:12,location:3[&since=<event id>] -> text/event-stream."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse("Sign in to follow live updates.", status=401, content_type="text/plain")
    try:
        keys = parse_keys(request.GET.get("topics", ""))
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    refusal = await sync_to_async(_authorise)(user, keys)
    if refusal:
        return HttpResponse(refusal, status=403, content_type="text/plain")
    if not isinstance(request, ASGIRequest):
        return HttpResponse(status=204)  # WSGI cannot stream without tying up a worker
    response = StreamingHttpResponse(_stream(keys, _since(request)), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each message straight through
    return response


# --- Housekeeping ----------------------------------------------------------------------------


def live_events_prune(*, older_than: timedelta = RETENTION) -> int:
    """Delete outbox rows older than `older_than` (a reconnecting screen only needs minutes).

    Returns how many rows were deleted. Run by Celery beat (inventory.tasks.live_events_prune).
    """
    cutoff = timezone.now() - older_than
    deleted, _ = LiveEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
