"""omni/asgi.py: requests run on a fixed set of reused threads, handed over once; live streams do not hold them.

Served by uvicorn in a thread of the test process (tests/asgi_server.py), as the live-stream
tests are; transactional, so the server's connections see what the tests commit.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from asgiref.sync import ThreadSensitiveContext
from django.core.signals import request_finished, request_started
from django.db.backends.signals import connection_created
from rest_framework.authtoken.models import Token

from omni.asgi import STREAM_BATCH_BYTES, _read_on_lane
from tests.asgi_server import asgi_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connections_opened() -> Iterator[list[str]]:
    """The name of the thread behind every database connection opened while the test runs."""
    threads: list[str] = []

    def record(sender, connection, **kwargs) -> None:
        threads.append(threading.current_thread().name)

    connection_created.connect(record)
    yield threads
    connection_created.disconnect(record)


def test_requests_reuse_two_lanes_and_their_database_connections(connections_opened):
    with asgi_server(lanes=2) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        answers = [client.get("/readyz").status_code for _ in range(10)]
        # Four at once: each waits for one of the two lanes.
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers += list(pool.map(lambda _: httpx.get(f"{base_url}/readyz", timeout=10).status_code, range(8)))

    assert answers == [200] * 18
    # Django's own handler opens a thread, and so a connection, per request: 18 here.
    assert 1 <= len(connections_opened) <= 2
    assert all(name.startswith("omni-lane-") for name in connections_opened)


def test_open_live_streams_take_no_lane_and_no_thread_each(client, associate):
    client.force_login(associate)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    with asgi_server(lanes=1) as base_url:
        threads_before = {thread.name for thread in threading.enumerate()}
        streams = []
        try:
            for _ in range(3):
                http = httpx.Client(base_url=base_url, cookies=cookies, timeout=httpx.Timeout(5.0))
                response = http.send(http.build_request("GET", "/live/stream/?topics=variant:1"), stream=True)
                assert response.status_code == 200
                # Keep the line iterator: dropping it closes the response (httpx) and so the stream.
                lines = response.iter_lines()
                assert ": connected" in itertools.islice(lines, 5)
                streams.append((http, response, lines))
            new_threads = {thread.name for thread in threading.enumerate()} - threads_before

            started = time.monotonic()
            answer = httpx.get(f"{base_url}/readyz", timeout=5)
            waited = time.monotonic() - started
        finally:
            for http, response, _lines in streams:
                response.close()
                http.close()

    # The one lane is free although three streams are open...
    assert answer.status_code == 200
    assert waited < 2
    # ...and the streams' synchronous calls ran on the two shared stream threads, not one each.
    stream_threads = {name for name in new_threads if name.startswith("omni-stream-lane-")}
    assert 1 <= len(stream_threads) <= 2
    assert not {name for name in new_threads if name.startswith("ThreadPoolExecutor-")}


@pytest.fixture
def request_signals() -> Iterator[list[tuple[str, str]]]:
    """(signal, thread name) for every request_started and request_finished while the test runs."""
    fired: list[tuple[str, str]] = []

    def started(sender, **kwargs) -> None:
        fired.append(("started", threading.current_thread().name))

    def finished(sender, **kwargs) -> None:
        fired.append(("finished", threading.current_thread().name))

    request_started.connect(started)
    request_finished.connect(finished)
    yield fired
    request_started.disconnect(started)
    request_finished.disconnect(finished)


@pytest.fixture
def lane_handovers(monkeypatch) -> list[str]:
    """The lane of every call handed to a request lane (omni-lane-N) while the test runs."""
    handovers: list[str] = []
    submit = ThreadPoolExecutor.submit

    def counting_submit(executor, *args, **kwargs):
        if executor._thread_name_prefix.startswith("omni-lane-"):
            handovers.append(executor._thread_name_prefix)
        return submit(executor, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", counting_submit)
    return handovers


def test_a_request_hands_over_to_its_lane_once(lane_handovers, request_signals):
    with asgi_server(lanes=2) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        answers = [client.get("/readyz").status_code for _ in range(6)]
        during_requests = list(lane_handovers)  # the server's shutdown then closes each lane's connection

    assert answers == [200] * 6
    # Django's own path hands a request to its lane three times (middleware, view, closing): 18.
    assert len(during_requests) == 6
    assert [signal for signal, _ in request_signals] == ["started", "finished"] * 6
    assert all(thread.startswith("omni-lane-") for _, thread in request_signals)


def test_a_streaming_response_is_read_on_the_lane_sent_whole_then_closed(
    client, manager, request_signals, lane_handovers
):
    client.force_login(manager)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    with (
        warnings.catch_warnings(record=True) as warned,
        asgi_server(lanes=1) as base_url,
        httpx.Client(base_url=base_url, cookies=cookies, timeout=10) as http,
    ):
        warnings.simplefilter("always")
        response = http.get("/insights/customers/export.csv?channel=email")
        # The server closes the response after the client has its last byte: wait for that close.
        deadline = time.monotonic() + 5
        while ("finished" not in {signal for signal, _ in request_signals}) and time.monotonic() < deadline:
            time.sleep(0.01)
        during_request = list(lane_handovers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines()[0] == "customer_id,name,email,segment,value_band,at_risk,clv_12m,p_alive"
    assert [signal for signal, _ in request_signals] == ["started", "finished"]
    assert all(thread.startswith("omni-lane-") for _, thread in request_signals)
    # The view, one batch of rows, the end of the rows, closing: all on the lane.
    assert len(during_request) == 4
    # Django's handler would read the rows into a list first, warning that it must.
    assert not [w for w in warned if "must consume synchronous iterators" in str(w.message)]


def test_a_long_response_is_read_in_batches_on_its_lane():
    lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omni-lane-test")
    readers: list[str] = []

    def rows() -> Iterator[bytes]:
        for number in range(10_000):
            readers.append(threading.current_thread().name)
            yield f"{number:09d},row\n".encode()  # 14 bytes

    async def read() -> list[bytes]:
        async with ThreadSensitiveContext(executor=lane):
            return [batch async for batch in _read_on_lane(rows())]

    try:
        batches = asyncio.run(read())
    finally:
        lane.shutdown()

    assert b"".join(batches) == b"".join(f"{number:09d},row\n".encode() for number in range(10_000))
    # 140 kB in batches of at least 64 kB (a row is never split), each read in one hand-over.
    assert [len(batch) // 14 for batch in batches] == [4682, 4682, 636]
    assert all(len(batch) >= STREAM_BATCH_BYTES for batch in batches[:-1])
    assert set(readers) == {"omni-lane-test_0"}


def test_errors_and_request_bodies_are_served_as_django_serves_them(manager):
    token, _ = Token.objects.get_or_create(user=manager)
    with asgi_server(lanes=1) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
        missing = http.get("/no-such-page/")
        anonymous = http.post("/api/v1/stock/receipts/", json={"sku": "X", "quantity": 1})
        bad = http.post(
            "/api/v1/stock/receipts/",
            json={"sku": "NO-SUCH-SKU", "quantity": -3},
            headers={"Authorization": f"Token {token.key}"},
        )
        fine = http.get("/readyz")

    assert missing.status_code == 404
    assert anonymous.status_code == 401
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/json"
    assert bad.json()  # the error names what is wrong
    assert fine.status_code == 200  # the lane survived them all
