"""Shared benchmark helpers: a bench database with bulk stock, a uvicorn server, a load generator.

Every benchmark runs against its own PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/omni_bench), never the development one. `bench_setup()` creates
and migrates it; `ensure_stock()` fills it with N locations x M variants once (COPY, about a
minute for a million levels) and skips when it is already there.

The stock is written the way inventory.services.stock_opening_balance_bulk writes it (a level
and a receipt movement per row, same keys), only through COPY: the ledger equals the levels, so
reconciliation finds no drift.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omni_bench")
# Redis for what a production web process needs it for (here: the token cache's channel).
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
BENCH_PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway user in a throwaway database
LOCATION_PREFIX = "bench-"
SKU_PREFIX = "BENCH-"
SEED_KEY = "bench-seed"
BENCH_LOCATION_CODE = r"^bench-[0-9]{3}$"  # the generated stores; other benchmarks may add their own


def server_environment(**extra: str) -> dict[str, str]:
    """The environment of a production-like Omni process on the bench database."""
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_DATABASE_URL,
        "DJANGO_SETTINGS_MODULE": "omni.settings",
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
        "DEBUG": "0",
        "OMNI_TESTING": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_HTTPS": "0",
        "LOG_LEVEL": "WARNING",
        "OMNI_VAR_DIR": str(ROOT / "var" / "bench"),
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    (Path(env["OMNI_VAR_DIR"]) / "staticfiles").mkdir(parents=True, exist_ok=True)  # WhiteNoise warns otherwise
    return env


def bench_setup(**extra: str) -> None:
    """Point Django at the bench database (created if missing), set it up and migrate it.

    The benchmark process itself uses one plain connection (no pool): it is one thread. `extra`
    overrides the environment (e.g. REDIS_URL), also for client processes it spawns later.
    """
    for name, value in server_environment(DATABASE_POOL="0", **extra).items():
        if name != "PYTHONPATH":
            os.environ[name] = value
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    _create_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, skip_checks=True)


def django_child_setup() -> None:
    """django.setup() in a worker process started by the benchmark (the database exists).

    One plain connection per process, like a Celery worker: a pool would hold several. REDIS_URL
    stays as the parent's bench_setup left it.
    """
    for name, value in server_environment(DATABASE_POOL="0", REDIS_URL=os.environ.get("REDIS_URL", "")).items():
        if name != "PYTHONPATH":
            os.environ[name] = value
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _create_database() -> None:
    import psycopg

    name = BENCH_DATABASE_URL.rsplit("/", 1)[1]
    admin_url = BENCH_DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


# --- Bulk stock ------------------------------------------------------------------------------------


@dataclass
class BenchStock:
    location_ids: list[int]
    variant_ids: list[int]
    skus: list[str]


def ensure_stock(*, locations: int, variants: int, seed: int = 7) -> BenchStock:
    """N bench locations x M bench variants with a level (and its receipt movement) each.

    Idempotent: when the bench rows already exist in that shape it only reads them back.
    """
    from django.db import connection, transaction

    from inventory.barcodes import make_ean13
    from inventory.models import Location, StockLevel, Variant

    have_locations = Location.objects.filter(code__regex=BENCH_LOCATION_CODE).count()
    have_variants = Variant.objects.filter(sku__startswith=SKU_PREFIX).count()
    if have_locations != locations or have_variants != variants:
        if have_locations or have_variants:
            raise SystemExit(
                f"The bench database has {have_locations} bench locations and {have_variants} bench variants, "
                f"not {locations} x {variants}: drop it (dropdb omni_bench) or use BENCH_DATABASE_URL."
            )
        started = time.perf_counter()
        print(f"Generating {locations} locations x {variants} variants = {locations * variants:,} levels ...")
        rng = random.Random(seed)
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.connection
            Location.objects.bulk_create(
                [
                    Location(
                        code=f"{LOCATION_PREFIX}{number:03d}",
                        name=f"Bench store {number}",
                        kind="warehouse" if number == 0 else "store",
                        sells_online=number == 0,
                        ships_to_customers=number == 0,
                    )
                    for number in range(locations)
                ]
            )
            per_product = 5
            products = (variants + per_product - 1) // per_product
            with raw.cursor() as cur:
                with cur.copy(
                    "COPY inventory_product (style, name, brand, category, season, description, is_active, "
                    "created_at, updated_at) FROM STDIN"
                ) as copy:
                    for number in range(products):
                        copy.write_row(
                            (
                                f"BSTY{number:06d}",
                                f"Bench product {number}",
                                f"Brand {number % 40}",
                                ("tops", "bottoms", "shoes", "outerwear", "accessories")[number % 5],
                                "SS26",
                                "",
                                True,
                                "now",
                                "now",
                            )
                        )
                product_ids = [
                    row[0]
                    for row in cur.execute(
                        "SELECT id FROM inventory_product WHERE style LIKE 'BSTY%%' ORDER BY style"
                    ).fetchall()
                ]
                sizes = ("XS", "S", "M", "L", "XL")
                with cur.copy(
                    "COPY inventory_variant (product_id, sku, barcode, size, colour, price, currency, is_active, "
                    "created_at, updated_at) FROM STDIN"
                ) as copy:
                    for number in range(variants):
                        copy.write_row(
                            (
                                product_ids[number // per_product],
                                f"{SKU_PREFIX}{number:06d}",
                                make_ean13(f"29{number:010d}"),
                                sizes[number % per_product],
                                "Black",
                                "49.00",
                                "USD",
                                True,
                                "now",
                                "now",
                            )
                        )
            location_ids = list(
                Location.objects.filter(code__regex=BENCH_LOCATION_CODE).order_by("code").values_list("pk", flat=True)
            )
            variant_ids = list(
                Variant.objects.filter(sku__startswith=SKU_PREFIX).order_by("sku").values_list("pk", flat=True)
            )
            with raw.cursor() as cur:
                quantities = {}
                with cur.copy(
                    "COPY inventory_stocklevel (location_id, variant_id, on_hand, committed, reserved, safety_stock, "
                    "unavailable, incoming, needs_count, updated_at) FROM STDIN"
                ) as copy:
                    for location_id in location_ids:
                        for variant_id in variant_ids:
                            on_hand = rng.choice((0, 0, 1, 2, 3, 5, 8, 12, 20))
                            quantities[location_id, variant_id] = on_hand
                            copy.write_row((location_id, variant_id, on_hand, 0, 0, 0, 0, 0, False, "now"))
                with cur.copy(
                    "COPY inventory_stockmovement (location_id, variant_id, state, quantity, reason, reason_code, "
                    "note, reference_type, reference_id, actor_label, operation_key, idempotency_key, created_at) "
                    "FROM STDIN"
                ) as copy:
                    for (location_id, variant_id), on_hand in quantities.items():
                        if on_hand:
                            key = f"{SEED_KEY}:{location_id}:{variant_id}"
                            copy.write_row(
                                (
                                    location_id,
                                    variant_id,
                                    "on_hand",
                                    on_hand,
                                    "receipt",
                                    "opening-balance",
                                    "",
                                    "",
                                    "",
                                    "system:bench-seed",
                                    key,
                                    f"{key}|{location_id}|{variant_id}|on_hand",
                                    "now",
                                )
                            )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"  generated in {time.perf_counter() - started:.0f} s")
    location_ids = list(
        Location.objects.filter(code__regex=BENCH_LOCATION_CODE).order_by("code").values_list("pk", flat=True)
    )
    rows = list(Variant.objects.filter(sku__startswith=SKU_PREFIX).order_by("sku").values_list("pk", "sku"))
    levels = StockLevel.objects.filter(location_id__in=location_ids[:1]).count()
    assert levels == len(rows), "bench levels are incomplete"
    return BenchStock(location_ids=location_ids, variant_ids=[pk for pk, _ in rows], skus=[sku for _, sku in rows])


def bench_user_token(*, role: str = "store_associate") -> str:
    """A bench member of staff in `role` at the first bench location, and their API token."""
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from inventory.models import Location
    from omni.models import User

    user, created = User.objects.get_or_create(
        username=f"bench-{role}",
        defaults={"home_location": Location.objects.filter(code__regex=BENCH_LOCATION_CODE).order_by("code").first()},
    )
    if created:
        user.set_password(BENCH_PASSWORD)
        user.save()
        user.groups.add(Group.objects.get(name=role))
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


# --- A server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def uvicorn_server(*, workers: int = 1, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve Omni with uvicorn (bench URLconf) on a free port; yield its base URL; stop it after."""
    port = free_port()
    # A psycopg pool per server process, as in production (omni/asgi.py: requests on reused lanes).
    env = server_environment(**{"OMNI_ROOT_URLCONF": "bench.urls", "DATABASE_POOL": "1", **(extra_env or {})})
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "omni.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/bench/trivial/", process)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("the server did not come up within 60 s")


# --- Load ----------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    name: str
    requests: int
    seconds: float
    latencies: list[float] = field(repr=False)
    failures: int = 0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        return percentile(self.latencies, fraction)

    def line(self) -> str:
        return (
            f"{self.name:<28} {self.per_second:8.0f} req/s   p50 {self.percentile(0.50) * 1000:6.2f} ms   "
            f"p99 {self.percentile(0.99) * 1000:6.2f} ms   ({self.requests} requests, {self.failures} failed)"
        )


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def http_load(
    *,
    name: str,
    base: str,
    path_for: Callable[[random.Random], str],
    headers: dict[str, str] | None = None,
    clients: int = 8,
    seconds: float = 10.0,
    expect_status: int = 200,
) -> LoadResult:
    """`clients` threads, each with a keep-alive httpx client, requesting for `seconds`."""
    import httpx

    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine: list[float] = []
        bad = 0
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            barrier.wait()
            while time.perf_counter() < stop_at:
                path = path_for(rng)
                started = time.perf_counter()
                response = client.get(path)
                mine.append(time.perf_counter() - started)
                if response.status_code != expect_status:
                    bad += 1
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return LoadResult(name=name, requests=len(latencies), seconds=elapsed, latencies=latencies, failures=failures[0])


@dataclass
class CpuSnapshot:
    """CPU seconds (user + system) used so far by the bench server, PostgreSQL and this process."""

    server: float
    postgres: float
    load_generator: float

    @classmethod
    def take(cls) -> CpuSnapshot:
        """Linux only (/proc). The server: every process serving omni.asgi (workers included);
        PostgreSQL: every backend on the machine (run nothing else against it meanwhile)."""
        server = postgres = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                name = (stat.parent / "comm").read_text().strip()
                command = (stat.parent / "cmdline").read_bytes()
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            seconds = (int(fields[11]) + int(fields[12])) / tick
            if name.startswith("postgres"):
                postgres += seconds
            elif b"omni.asgi:application" in command:
                server += seconds
        own = os.times()
        return cls(server=server, postgres=postgres, load_generator=own.user + own.system)

    def per_request_ms(self, before: CpuSnapshot, requests: int) -> str:
        """'server 1.23 ms, PostgreSQL 0.40 ms, load generator 0.60 ms' of CPU per request."""
        if not requests:
            return "no requests"
        parts = (
            ("server", self.server - before.server),
            ("PostgreSQL", self.postgres - before.postgres),
            ("load generator", self.load_generator - before.load_generator),
        )
        return ", ".join(f"{name} {seconds / requests * 1000:.2f} ms" for name, seconds in parts)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
