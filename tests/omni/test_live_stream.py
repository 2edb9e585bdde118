"""Live updates end to end: a committed stock change reaches an open SSE stream served by uvicorn.

The server runs in a thread of the test process (tests/asgi_server.py) on the test database;
tests are transactional so the server's connections see what the test commits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connections, transaction

from inventory import services
from omni import live_stream
from tests.asgi_server import asgi_server
from tests.factories import UserFactory, VariantFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server() -> Iterator[str]:
    with asgi_server() as base_url:
        yield base_url


@pytest.fixture
def session_cookie(client, associate) -> dict[str, str]:
    client.force_login(associate)
    return {"sessionid": client.cookies["sessionid"].value}


def sse_events(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Parse a text/event-stream into {"id", "event", "data"} dicts; comments become {"comment"}."""
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


def next_event(events: Iterator[dict[str, str]], *, timeout: float) -> dict[str, str]:
    """The next real event (not a comment), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    for event in events:
        if "event" in event:
            return event
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no event within {timeout}s")


def open_stream(base_url: str, cookies: dict[str, str], query: str, headers: dict[str, str] | None = None):
    client = httpx.Client(base_url=base_url, cookies=cookies, timeout=httpx.Timeout(5.0, read=5.0))
    return client, client.stream("GET", f"/live/stream/?{query}", headers=headers or {})


def wait_for(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_change_committed_elsewhere_reaches_the_stream_through_redis_within_a_second(
    server, session_cookie, store, associate
):
    variant = VariantFactory()
    client, stream = open_stream(server, session_cookie, f"topics=variant:{variant.pk}")
    with client, stream as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        assert next(events) == {"comment": "connected"}
        assert live_stream._latest is not None and wait_for(lambda: live_stream._latest._redis_ok)

        started = time.monotonic()
        operation = services.stock_receive(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=3)
        event = next_event(events, timeout=1.0)
        elapsed = time.monotonic() - started

    assert event["event"] == f"stock-{variant.pk}"
    assert json.loads(event["data"]) == {"levels": [[store.pk, variant.pk]], "reason": "receipt"}
    assert int(event["id"]) > 0
    assert elapsed < 1.0
    assert operation.movements


def test_without_redis_the_hub_polls_and_the_change_still_arrives_within_a_second(
    server, session_cookie, store, associate, settings
):
    settings.REDIS_URL = ""  # the embedded default: no wake-up is published, the hub polls
    variant = VariantFactory()
    client, stream = open_stream(server, session_cookie, f"topics=variant:{variant.pk}")
    with client, stream as response:
        events = sse_events(response)
        assert next(events) == {"comment": "connected"}
        started = time.monotonic()
        services.stock_receive(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=1)
        event = next_event(events, timeout=1.0)
        elapsed = time.monotonic() - started
        redis_used = live_stream._latest._redis_ok

    assert event["event"] == f"stock-{variant.pk}"
    assert elapsed < 1.0
    assert redis_used is False


@pytest.mark.parametrize("redis", [True, False], ids=["redis", "polling"])
def test_a_rolled_back_change_produces_no_event(server, session_cookie, store, associate, settings, redis):
    if not redis:
        settings.REDIS_URL = ""
    rolled_back, marker = VariantFactory(), VariantFactory()
    client, stream = open_stream(server, session_cookie, f"topics=variant:{rolled_back.pk},variant:{marker.pk}")
    with client, stream as response:
        events = sse_events(response)
        next(events)
        with pytest.raises(RuntimeError), transaction.atomic():
            services.stock_receive(actor=associate, location_id=store.pk, variant_id=rolled_back.pk, quantity=5)
            raise RuntimeError("the caller's transaction fails after the stock change")
        services.stock_receive(actor=associate, location_id=store.pk, variant_id=marker.pk, quantity=1)
        first = next_event(events, timeout=2.0)

    # Events are read in id order: had the rolled-back change left an event, it would come first.
    assert first["event"] == f"stock-{marker.pk}"
    assert not rolled_back.stock_levels.exists()


def test_an_event_whose_transaction_commits_late_is_still_delivered(server, session_cookie, store, associate):
    # Outbox ids are taken at insert, seen at commit: a slow transaction's lower id shows up after a higher one.
    slow, fast = VariantFactory(), VariantFactory()
    inserted, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def slow_transaction() -> None:
        from django.db import connection

        try:
            with transaction.atomic():
                services.stock_receive(actor=associate, location_id=store.pk, variant_id=slow.pk, quantity=1)
                inserted.set()
                release.wait(5)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)
        finally:
            connection.close()

    client, stream = open_stream(server, session_cookie, f"topics=variant:{slow.pk},variant:{fast.pk}")
    with client, stream as response:
        events = sse_events(response)
        next(events)
        worker = threading.Thread(target=slow_transaction)
        worker.start()
        assert inserted.wait(5)
        services.stock_receive(actor=associate, location_id=store.pk, variant_id=fast.pk, quantity=1)
        first = next_event(events, timeout=2.0)
        release.set()
        worker.join(5)
        second = next_event(events, timeout=2.0)

    assert not failures
    assert first["event"] == f"stock-{fast.pk}"
    assert second["event"] == f"stock-{slow.pk}"
    assert int(second["id"]) < int(first["id"])


def test_reconnecting_with_last_event_id_replays_what_was_missed(server, session_cookie, store, associate):
    variant, other = VariantFactory(), VariantFactory()
    services.stock_receive(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=1)
    seen = live_stream_latest_id()
    services.stock_receive(actor=associate, location_id=store.pk, variant_id=other.pk, quantity=1)
    services.stock_receive(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=2)

    client, stream = open_stream(
        server, session_cookie, f"topics=variant:{variant.pk}", headers={"Last-Event-ID": str(seen)}
    )
    with client, stream as response:
        events = sse_events(response)
        replayed = next_event(events, timeout=1.0)

    assert replayed["event"] == f"stock-{variant.pk}"
    assert int(replayed["id"]) > seen


def test_the_page_passes_since_so_a_change_between_render_and_connect_is_not_lost(
    server, session_cookie, store, associate
):
    variant = VariantFactory()
    rendered_at = live_stream_latest_id()
    services.stock_receive(actor=associate, location_id=store.pk, variant_id=variant.pk, quantity=1)

    client, stream = open_stream(server, session_cookie, f"topics=variant:{variant.pk}&since={rendered_at}")
    with client, stream as response:
        event = next_event(sse_events(response), timeout=1.0)

    assert event["event"] == f"stock-{variant.pk}"


def test_location_topics_carry_every_variant_changed_there(server, client, store, other_store):
    manager = UserFactory(username="mgr-live", role="store_manager", home_location=store)
    client.force_login(manager)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    variant = VariantFactory()

    http, stream = open_stream(server, cookies, f"topics=location:{store.pk}")
    with http, stream as response:
        events = sse_events(response)
        next(events)
        services.stock_receive(actor=manager, location_id=other_store.pk, variant_id=variant.pk, quantity=1)
        services.stock_receive(actor=manager, location_id=store.pk, variant_id=variant.pk, quantity=1)
        event = next_event(events, timeout=2.0)

    assert event["event"] == f"stock-location-{store.pk}"
    assert json.loads(event["data"])["levels"] == [[store.pk, variant.pk]]


def test_closing_a_stream_unsubscribes_it(server, session_cookie):
    variant = VariantFactory()
    client, stream = open_stream(server, session_cookie, f"topics=variant:{variant.pk}")
    with client, stream as response:
        events = sse_events(response)  # keep a reference: dropping the iterator closes the connection
        next(events)
        assert wait_for(lambda: live_stream._latest.client_count == 1)

    assert wait_for(lambda: live_stream._latest.client_count == 0)


def test_stream_refuses_strangers_bad_topics_and_other_stores(server, session_cookie, other_store):
    with httpx.Client(base_url=server, timeout=5) as anonymous:
        assert anonymous.get("/live/stream/?topics=variant:1").status_code == 401
    with httpx.Client(base_url=server, cookies=session_cookie, timeout=5) as http:
        bad = http.get("/live/stream/?topics=orders:1")
        empty = http.get("/live/stream/")
        elsewhere = http.get(f"/live/stream/?topics=location:{other_store.pk}")

    assert bad.status_code == 400 and "Unknown live topic" in bad.text
    assert empty.status_code == 400
    assert elsewhere.status_code == 403


def test_under_wsgi_the_stream_declines_with_204_instead_of_tying_up_a_worker(client, associate):
    client.force_login(associate)

    # On a thread of its own: the async view needs async_to_sync, which refuses a thread where
    # Playwright (browser tests in the same session) keeps an event loop running.
    def get():
        try:
            return client.get("/live/stream/?topics=variant:1")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        response = pool.submit(get).result()

    assert response.status_code == 204


def live_stream_latest_id() -> int:
    from omni.models import LiveEvent

    return LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
