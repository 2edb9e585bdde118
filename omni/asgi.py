"""Omni's ASGI application: Django's handler, with its synchronous code on a fixed set of threads.

Django runs a request's synchronous code (middleware, views, the ORM) on a thread of its own, and
by default that thread is new for every request: it is created, given a new database connection
wrapper, and thrown away. Under load that cost every request CPU time that had nothing to do with
it (a trivial view served 30% more requests per second without it). `LanedASGIHandler` instead
runs each request on one of `OMNI_ASGI_LANES` long-lived threads ("lanes"): a request waits for a
free lane, keeps it until its response is sent, and gives it back, so one slow request never
delays another's database calls. A process therefore needs at most `OMNI_ASGI_LANES` database
connections for requests (the pool's size follows it).

On its lane a request is also handed over once, not three times: Django's path goes to the lane
and back for the middleware, for the view and for closing the response (and sends the
request_started signal from the event loop). Here the signal, the synchronous middleware chain
(the one WSGI runs), the view and closing a complete response run in one call, as under WSGI;
that halved the server's CPU time for a trivial view. A streaming response is read on the lane
about 64 kB per hand-over and sent from the event loop as it comes, watching for the client
leaving as Django does, then closed on the lane.

Live streams (`/live/stream/`) stay open for hours but use a thread only while they open and
close (authentication, the role check); streaming itself runs on the event loop. Holding a lane
would block the lane for hours, and Django's thread per request would keep one idle thread per
open screen. So streams share `STREAM_LANES` threads instead: their short synchronous calls take
turns on them.

`OMNI_ASGI_LANES=0` serves with Django's handler unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.asgi import get_asgi_application
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpResponseBase
from django.urls import set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omni.settings")

# WhiteNoise serves static files as a FileResponse with a synchronous iterator. The lanes read such
# iterators themselves (_read_on_lane); Django's handler (live streams, OMNI_ASGI_LANES=0) reads
# them in a worker thread and warns on every file. That is fine for our static files (small,
# cached by the browser), so the warning would only bury real log lines.
warnings.filterwarnings(
    "ignore",
    message="StreamingHttpResponse must consume synchronous iterators",
    category=Warning,
    module="django.core.handlers.asgi",
)

# Paths whose responses stream for as long as the client stays (they must not hold a lane).
STREAM_PREFIXES = ("/live/stream/",)
STREAM_LANES = 2


def _close_connections() -> None:
    from django.db import connections

    connections.close_all()  # this thread's connections (Django keeps one set per thread)


class LanedASGIHandler(ASGIHandler):
    """Django's ASGI handler with each request's synchronous code on one of `lanes` reused threads."""

    def __init__(self, *, lanes: int) -> None:
        super().__init__()
        if lanes < 1:
            raise ValueError("OMNI_ASGI_LANES must be at least 1.")
        self.lanes = lanes
        # Per event loop: an asyncio.Queue belongs to one loop (a test server may run several).
        self._free: dict[asyncio.AbstractEventLoop, asyncio.Queue[ThreadPoolExecutor]] = {}
        self._stream_lanes = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"omni-stream-lane-{number}")
            for number in range(STREAM_LANES)
        ]
        self._streams_opened = itertools.count()
        # The middleware chain WSGI runs: synchronous throughout, so a request's synchronous code
        # runs in one call on its lane (see _respond). Django's own (async) chain serves streams.
        self._synchronous = BaseHandler()
        self._synchronous.load_middleware(is_async=False)

    def _free_lanes(self) -> asyncio.Queue[ThreadPoolExecutor]:
        loop = asyncio.get_running_loop()
        free = self._free.get(loop)
        if free is None:
            free = asyncio.Queue()
            for number in range(self.lanes):
                free.put_nowait(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"omni-lane-{number}"))
            self._free[loop] = free
        return free

    async def aclose(self) -> None:
        """Close every lane's database connection and stop its thread (a server shutting down)."""
        loop = asyncio.get_running_loop()
        lanes = list(self._stream_lanes)
        free = self._free.pop(loop, None)
        while free is not None and not free.empty():
            lanes.append(free.get_nowait())
        for lane in lanes:
            await loop.run_in_executor(lane, _close_connections)
            lane.shutdown(wait=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # Django refuses it, with its message
        if scope["path"].startswith(STREAM_PREFIXES):
            # Shared, not held: each synchronous call runs to its end before the next one starts.
            lane = self._stream_lanes[next(self._streams_opened) % STREAM_LANES]
            async with ThreadSensitiveContext(executor=lane):
                await self.handle(scope, receive, send)
            return
        free = self._free_lanes()
        lane = await free.get()
        try:
            async with ThreadSensitiveContext(executor=lane):
                await self._handle_on_lane(scope, receive, send)
        finally:
            free.put_nowait(lane)

    async def _handle_on_lane(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's `handle`, with everything synchronous in one call on the lane.

        Django's own path hands the request to its thread and back three times (the middleware,
        the view, closing the response). Here the signal, the middleware and the view run in one
        call, as under WSGI, and so does closing a response that is already complete. Only a streaming
        response is sent before it is closed, watching for the client leaving as Django does.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
        if not response.streaming:
            await self.send_response(response, send)  # already closed, on the lane
            return
        if not response.is_async:  # type: ignore[attr-defined]  # streaming responses have it
            # Read on the lane (its database connection, e.g. an export's cursor) a batch at a time,
            # sent as it comes: Django would read the whole iterator into memory first, and warn.
            response.streaming_content = _read_on_lane(response.streaming_content)  # type: ignore[attr-defined]
        sending = asyncio.create_task(self.send_response(response, send))
        watching = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((sending, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            sending.cancel()  # a no-op once it is done; otherwise the client left
            await asyncio.gather(sending, watching, return_exceptions=True)
            await sync_to_async(response.close, thread_sensitive=True)()
            body_file.close()
        if not sending.cancelled():
            sending.result()  # a failure while streaming is raised, as under Django's handler

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """On the lane: the request_started signal, the request, the middleware and the view; a
        complete response is closed here too (request_finished: the connection goes back)."""
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                assert error_response is not None  # create_request gives one or the other
                response = error_response
            else:
                response = self._synchronous.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]  # as run_get_response sets it
            if not response.streaming:
                response.close()  # its content is in memory already
                body_file.close()
            return response
        except BaseException:
            body_file.close()
            raise


STREAM_BATCH_BYTES = 64 * 1024  # what a streaming response's lane reads per hand-over


def _take_batch(chunks: Iterator[bytes]) -> bytes:
    taken: list[bytes] = []
    size = 0
    for chunk in chunks:
        taken.append(chunk)
        size += len(chunk)
        if size >= STREAM_BATCH_BYTES:
            break
    return b"".join(taken)


async def _read_on_lane(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A synchronous response iterator read on the request's lane, about 64 kB per hand-over."""
    take = sync_to_async(_take_batch, thread_sensitive=True)
    while batch := await take(chunks):
        yield batch


def _application() -> ASGIHandler:
    django_handler = get_asgi_application()  # also django.setup(), as Django's entry point does
    from django.conf import settings

    lanes = settings.OMNI_ASGI_LANES
    return LanedASGIHandler(lanes=lanes) if lanes else django_handler


application = _application()
