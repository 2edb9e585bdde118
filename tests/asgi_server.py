"""A real ASGI server (uvicorn) in a background thread, for tests that need streaming (SSE).

pytest-django's `live_server` is a threaded WSGI server: it cannot hold server-sent event
streams open. This runs Omni's ASGI application under uvicorn in a thread of the test process,
so it shares the test settings (the test database name, the test Redis) and, with
`django_db(transaction=True)`, sees every committed row. On shutdown it stops this server's live
hub and closes its database connection.

    with asgi_server() as base_url:
        httpx.get(f"{base_url}/healthz")
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from omni.asgi import LanedASGIHandler
from omni.live_stream import stop_hub


class _App:
    """Omni's ASGI handler (request lanes) plus static files, as WhiteNoise serves them, and lifespan."""

    def __init__(self, *, lanes: int) -> None:
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        self.omni = LanedASGIHandler(lanes=lanes)
        self.django = ASGIStaticFilesHandler(self.omni)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await stop_hub()
                    await self.omni.aclose()  # the lanes' connections, before the test database goes
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.django(scope, receive, send)


@contextmanager
def asgi_server(*, lanes: int = 4) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_App(lanes=lanes), lifespan="on", log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="asgi-server")
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
