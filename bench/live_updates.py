"""Commit-to-screen latency of live stock updates with 500 open screens on one uvicorn process.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/live_updates.py [--clients 500] [--rate 5] [--seconds 20]

Serves Omni with uvicorn (one worker) on its own bench database (BENCH_DATABASE_URL, default
.../omni_bench_live), opens N server-sent-event streams (raw asyncio sockets, all subscribed to one
variant, in batches like screens opening), then a separate writer process commits stock receipts
for that variant at a steady rate. For every commit and every client it measures the time from
the commit (an on_commit hook registered before the service's own, stamped with the wall clock
of the same machine) to the event's arrival on that client's socket. Prints p50/p95/p99/max and
any deliveries that never arrived. Without REDIS_URL the server polls the outbox (embedded mode).

Target: p95 <= 250 ms with 500 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omni_bench_live")

from bench.common import bench_setup, percentile, server_environment, uvicorn_server  # noqa: E402

LOCATION_CODE = "bench-live"
SKU = "BENCH-LIVE-1"


# --- Set-up (in the bench process, before the server starts) ---------------------------------


def prepare() -> tuple[int, int, str]:
    """The bench location, variant and a signed-in session for the streams."""
    from decimal import Decimal

    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from inventory.barcodes import make_ean13
    from inventory.models import Location, Product, Variant
    from omni.models import User

    location, _ = Location.objects.get_or_create(
        code=LOCATION_CODE,
        defaults={"name": "Bench live store", "latitude": Decimal("30.27"), "longitude": Decimal("-97.74")},
    )
    product, _ = Product.objects.get_or_create(
        style="BENCH-LIVE", defaults={"name": "Bench live tee", "brand": "Bench", "category": "tops"}
    )
    variant, _ = Variant.objects.get_or_create(
        sku=SKU,
        defaults={
            "product": product,
            "barcode": make_ean13("299999999901"),
            "size": "M",
            "colour": "Grey",
            "price": Decimal("10.00"),
        },
    )
    user, created = User.objects.get_or_create(username="bench-live", defaults={"home_location": location})
    if created:
        user.groups.add(Group.objects.get(name="store_associate"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    session = client.cookies["sessionid"].value
    connection.close()
    return location.pk, variant.pk, session


# --- The writer (a separate process) ----------------------------------------------------------


def writer(location_id: int, variant_id: int, rate: float, seconds: float) -> None:
    """Commit one receipt every 1/rate s; print {"event", "committed"} per commit as JSON lines.

    Uses Redis like the server does (BENCH_LIVE_REDIS_URL): its commits publish the wake-ups.
    """
    for name, value in server_environment(REDIS_URL=os.environ.get("BENCH_LIVE_REDIS_URL", "")).items():
        if name != "PYTHONPATH":
            os.environ[name] = value
    import django

    django.setup()
    from django.db import transaction

    from inventory import services
    from omni.models import LiveEvent

    actor = services.SystemActor("bench-live-writer")
    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        stamp: dict[str, float] = {}
        with transaction.atomic():
            # Registered before the service's own hook (the Redis wake-up): runs first, right after COMMIT.
            transaction.on_commit(lambda stamp=stamp: stamp.__setitem__("committed", time.time()))
            services.stock_receive(actor=actor, location_id=location_id, variant_id=variant_id, quantity=1)
            event_id = LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
        print(json.dumps({"event": event_id, "committed": stamp["committed"]}), flush=True)
        n += 1
        next_at = start + n * interval
        time.sleep(max(0.0, next_at - time.monotonic()))


# --- The screens (asyncio sockets in the bench process) ----------------------------------------


class Screen:
    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.connected = asyncio.Event()
        self.error: str | None = None


async def screen(host: str, port: int, path: str, session: str, me: Screen, stop: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        me.error = f"connect: {exc}"
        me.connected.set()
        return
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: sessionid={session}\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    )
    writer.write(request.encode())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status:
            me.error = status.decode(errors="replace")
            me.connected.set()
            return
        chunked = b"transfer-encoding: chunked" in head.lower()
        buffer = b""
        while not stop.is_set():
            if chunked:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.strip().split(b";")[0], 16)
                if size == 0:
                    break
                data = await reader.readexactly(size + 2)
                data = data[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    break
            now = time.time()
            buffer += data
            while b"\n\n" in buffer:
                message, buffer = buffer.split(b"\n\n", 1)
                if message.startswith(b": connected") or b"\n: connected" in message:
                    me.connected.set()
                for line in message.split(b"\n"):
                    if line.startswith(b"id: "):
                        me.arrivals.setdefault(int(line[4:]), now)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        if not stop.is_set():
            me.error = f"stream ended: {exc!r}"
    finally:
        me.connected.set()
        writer.close()


async def run_screens(base_url: str, session: str, variant_id: int, args: argparse.Namespace) -> dict[str, object]:
    host, port = base_url.removeprefix("http://").split(":")
    path = f"/live/stream/?topics=variant:{variant_id}"
    stop = asyncio.Event()
    screens = [Screen() for _ in range(args.clients)]
    tasks = []
    opened = time.monotonic()
    for first in range(0, args.clients, args.batch):
        batch = screens[first : first + args.batch]
        tasks += [asyncio.create_task(screen(host, int(port), path, session, s, stop)) for s in batch]
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in batch)), 60)
    open_seconds = time.monotonic() - opened
    failed = [s.error for s in screens if s.error]
    if failed:
        raise SystemExit(f"{len(failed)} streams failed to open, e.g. {failed[0]}")
    print(f"{args.clients} streams open in {open_seconds:.1f} s; committing {args.rate:g}/s for {args.seconds:g} s")
    print(server_stats(base_url), "with the streams open")

    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--writer",
        f"{args.location_id},{variant_id},{args.rate},{args.seconds}",
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "BENCH_LIVE_REDIS_URL": args.redis_url},
    )
    output, _ = await process.communicate()
    await asyncio.sleep(args.drain)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    commits = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    latencies = []
    missing = 0
    for commit in commits:
        for s in screens:
            arrived = s.arrivals.get(commit["event"])
            if arrived is None:
                missing += 1
            else:
                latencies.append((arrived - commit["committed"]) * 1000)
    return {"commits": len(commits), "latencies": latencies, "missing": missing, "open_seconds": open_seconds}


def server_stats(base_url: str) -> str:
    """Threads and memory of the uvicorn process listening on the port (Linux /proc)."""
    port = base_url.rsplit(":", 1)[1]
    try:
        out = subprocess.run(["ss", "-ltnp", f"sport = :{port}"], capture_output=True, text=True, check=False).stdout
        pid = out.split("pid=")[1].split(",")[0]
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return f"server process: {fields['Threads'].strip()} threads, {fields['VmRSS'].strip()} resident"
    except (IndexError, KeyError, OSError):
        return "server process: (no stats)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=5.0, help="commits per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=50, help="streams opened at a time")
    parser.add_argument("--drain", type=float, default=2.0, help="seconds to wait for late events")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop: auto (uvloop if installed) or asyncio")
    parser.add_argument("--http", default="auto", help="uvicorn --http: auto (httptools if installed) or h11")
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        location_id, variant_id, rate, seconds = args.writer.split(",")
        writer(int(location_id), int(variant_id), float(rate), float(seconds))
        return

    redis_url = args.redis_url = os.environ.get("REDIS_URL", "")
    bench_setup()
    args.location_id, variant_id, session = prepare()
    mode = f"Redis wake-ups ({redis_url})" if redis_url else "polling (no REDIS_URL)"
    print(f"Live updates: uvicorn (1 worker, --loop {args.loop}, --http {args.http}), {mode}; database pool on")
    # The pool keeps 500 stream openings from needing 500 database connections at once.
    server_env = {"REDIS_URL": redis_url, "DATABASE_POOL": "1", "UVICORN_LOOP": args.loop, "UVICORN_HTTP": args.http}
    with uvicorn_server(workers=1, extra_env=server_env) as base_url:
        result = asyncio.run(run_screens(base_url, session, variant_id, args))
    latencies = sorted(result["latencies"])  # type: ignore[arg-type]
    expected = result["commits"] * args.clients  # type: ignore[operator]
    print(f"{result['commits']} commits x {args.clients} screens = {expected} deliveries; missing {result['missing']}")
    if latencies:
        p50, p95, p99 = (percentile(latencies, f) for f in (0.50, 0.95, 0.99))
        print(
            f"commit-to-screen latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, "
            f"max {latencies[-1]:.0f} ms (target p95 <= 250 ms: {'met' if p95 <= 250 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
