"""The per-process live hub on its own (asyncio), plus the message format and housekeeping."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from inventory import services
from omni import live_stream
from omni.live_stream import LiveHub, Subscriber, event_messages, live_events_prune, parse_keys
from omni.models import LiveEvent
from tests.factories import VariantFactory


def run(coroutine):
    """Run on a fresh thread: Playwright's sync API (browser tests, same session) leaves a running
    event loop on the main thread, where asyncio.run() refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(coroutine, 10)).result()


def in_thread(function):
    """Run ORM work on another thread (its own connection), as another process would."""

    def wrapped():
        try:
            return function()
        finally:
            connection.close()

    return asyncio.get_running_loop().run_in_executor(None, wrapped)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redis", [True, False], ids=["redis", "polling"])
def test_one_read_per_wake_up_feeds_every_subscriber(store, associate, settings, redis):
    if not redis:
        settings.REDIS_URL = ""
    variant = VariantFactory()

    async def scenario():
        hub = LiveHub()
        try:
            subscribers = [await hub.subscribe({f"variant:{variant.pk}"}) for _ in range(200)]
            unrelated = await hub.subscribe({"variant:999999"})
            reads_before = hub.reads
            await in_thread(
                lambda: services.stock_receive(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=2)
            )
            messages = await asyncio.gather(*(asyncio.wait_for(s.queue.get(), 2) for s in subscribers))
            return messages, hub.reads - reads_before, unrelated.queue.qsize()
        finally:
            await hub.aclose()

    messages, reads, unrelated_queued = run(scenario())

    assert len(set(messages)) == 1  # the same pre-encoded message for everyone
    assert f"event: stock-{variant.pk}".encode() in messages[0]
    assert reads <= 3  # a wake-up (or a poll or two), never one read per subscriber
    assert unrelated_queued == 0


@pytest.mark.django_db(transaction=True)
def test_the_hub_stops_when_idle_and_restarts_for_the_next_stream(store, associate, monkeypatch):
    monkeypatch.setattr(live_stream, "IDLE_STOP_SECONDS", 0.1)
    variant = VariantFactory()

    async def scenario():
        hub = LiveHub()
        try:
            first = await hub.subscribe({f"variant:{variant.pk}"})
            hub.unsubscribe(first)
            for _ in range(100):
                if not hub.running:
                    break
                await asyncio.sleep(0.05)
            stopped = not hub.running
            second = await hub.subscribe({f"variant:{variant.pk}"})
            await in_thread(
                lambda: services.stock_receive(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=1)
            )
            message = await asyncio.wait_for(second.queue.get(), 2)
            return stopped, hub.running, message
        finally:
            await hub.aclose()

    stopped, running_again, message = run(scenario())

    assert stopped and running_again
    assert f"stock-{variant.pk}".encode() in message


def test_a_client_that_stops_reading_is_dropped_not_buffered_forever(monkeypatch):
    monkeypatch.setattr(live_stream, "QUEUE_SIZE", 3)

    async def scenario():
        subscriber = Subscriber(frozenset({"variant:1"}))
        for _ in range(5):
            subscriber.deliver(b"x")
        return subscriber

    subscriber = run(scenario())

    assert subscriber.dropped
    assert subscriber.queue.qsize() == 3
    assert list(subscriber.queue._queue)[-1] is None  # the stream ends; the browser reconnects


@pytest.mark.django_db(transaction=True)
def test_the_stream_sends_heartbeats_while_nothing_happens(settings, monkeypatch):
    settings.REDIS_URL = ""
    monkeypatch.setattr(live_stream, "HEARTBEAT_SECONDS", 0.1)

    async def scenario():
        stream = live_stream._stream(frozenset({"variant:1"}), None)
        try:
            return [await asyncio.wait_for(anext(stream), 2) for _ in range(3)]
        finally:
            await stream.aclose()
            await live_stream.stop_hub()

    chunks = run(scenario())

    assert chunks[0].startswith(b"retry: 1000\n")
    assert all(chunk.startswith(b": keep-alive\n\n") for chunk in chunks[1:])


def test_stock_events_name_each_variant_and_location_once():
    messages = event_messages(7, "stock", {"levels": [[1, 10], [2, 10], [1, 11]], "reason": "transfer_out"})

    assert set(messages) == {"variant:10", "variant:11", "location:1", "location:2"}
    lines = messages["variant:10"].decode().splitlines()
    assert lines[:2] == ["id: 7", "event: stock-10"]
    assert json.loads(lines[2].removeprefix("data: ")) == {"levels": [[1, 10], [2, 10]], "reason": "transfer_out"}
    assert b"event: stock-location-1\n" in messages["location:1"]
    assert event_messages(8, "orders", {"levels": [[1, 1]]}) == {}
    assert event_messages(9, "stock", {"levels": [["x"], None]}) == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("variant:12", {"variant:12"}),
        (" variant:012 , location:3,", {"variant:12", "location:3"}),
    ],
)
def test_topics_parse(raw, expected):
    assert parse_keys(raw) == expected


@pytest.mark.parametrize("raw", ["", ",", "variant:", "variant:x", "order:1", "variant:-1", "variant:1e3"])
def test_bad_topics_are_refused(raw):
    with pytest.raises(ValueError):
        parse_keys(raw)


def test_too_many_topics_are_refused():
    with pytest.raises(ValueError, match="At most"):
        parse_keys(",".join(f"variant:{n}" for n in range(live_stream.MAX_KEYS + 1)))


def test_a_non_ascii_digit_is_an_unknown_topic_and_no_resume_point():
    # str.isdigit() accepts '³', which int() refuses: both parsers must say no before int().
    with pytest.raises(ValueError, match="Unknown live topic"):
        parse_keys("variant:³")
    assert live_stream._since(RequestFactory().get("/live/", {"since": "³"})) is None
    assert live_stream._since(RequestFactory().get("/live/", {"since": "42"})) == 42


@pytest.mark.django_db
def test_prune_deletes_only_events_older_than_the_retention():
    old = LiveEvent.objects.create(topic="stock", payload={})
    LiveEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    fresh = LiveEvent.objects.create(topic="stock", payload={})

    deleted = live_events_prune()

    assert deleted == 1
    assert list(LiveEvent.objects.values_list("pk", flat=True)) == [fresh.pk]
