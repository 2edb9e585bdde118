"""Every script in bench/ runs end to end, tiny, as a person runs it, and its own checks pass.

CI never runs the benchmarks, so a refactor could break one unnoticed (a moved import once broke
bench/orders.py). Each test starts `python bench/<script>.py` with small sizes against a throwaway
PostgreSQL database of its own and checks the exit status and the lines that carry the result:
the ratio, the oversell and effect checks, the model figures. Never the speed: tiny runs on a
shared machine miss every target, and that is fine here.

The databases are cloned from a migrated template (migrating from scratch costs several seconds a
script), named after the suite's own database so that two suites on one server never share one,
and dropped after each test. The template is kept between runs, like pytest-django's --reuse-db:
its name carries a digest of the project's migrations, so a changed migration builds a new one
(the scripts migrate their database themselves too, so third-party migrations are applied either
way).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
PERFORMANCE_DOC = ROOT / "docs" / "PERFORMANCE.md"
SCRIPT_TIMEOUT = 240  # seconds; each takes 10-25 s on 2 busy cores
# Serialises cloning and building the template across xdist workers and concurrent suites: CREATE
# DATABASE ... TEMPLATE fails while anyone else is connected to the template.
TEMPLATE_LOCK = 0x6F6D6E69_62656E63  # "omnibenc"
TEMPLATE_PREFIX = "omni_bench_smoke_tpl_"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Bench:
    script: str
    args: str  # command-line options, as typed
    expect: tuple[str, ...]  # regular expressions, each matching a whole line of the output
    forbid: tuple[str, ...] = ()  # regular expressions that must match no line
    redis_db: int | None = None  # REDIS_URL for the script (the Redis the suite uses, this DB number)


BENCHES = [
    Bench(
        "availability",
        "--locations 2 --variants 50 --seconds 0.5 --clients 2 --rounds 1",
        expect=(
            r"Stock levels in the bench database: 100",
            # The token is looked up once, then checked from memory (omni.token_cache on Redis).
            r"Queries per availability lookup: 2 \(token with user and roles, stock\); 1 once the token is cached",
            r"Token cache \(omni.token_cache\): on, Redis redis://\S+",
            r"availability:  median \d+ req/s, p50 [\d.]+ ms, p99 [\d.]+ ms",
            r"\s+CPU per request: server [\d.]+ ms, PostgreSQL [\d.]+ ms, load generator [\d.]+ ms",
            r"ratio availability / trivial: [\d.]+ \(target >= 0\.70\) -> (PASS|MISS)",
        ),
        forbid=(r"WARNING: \d+ requests did not answer 200",),
    ),
    Bench(
        "hot_variant",
        "--seconds 0.3 --clients 2 --raw-clients 2 --sell-out-clients 3 --sell-out-units 60",
        expect=(
            r"services\.stock_reserve x2\s+median\s+\d+ reservations/s",
            r"raw guarded UPDATE x2\s+median\s+\d+ updates/s",
            r"sell-out: 60 of 60 units reserved by 3 clients, \d+ refused; no oversell, ledger = levels",
        ),
    ),
    Bench(
        "orders",
        # The warm-up and the round place a couple of hundred orders: with fewer variants some sell
        # out at the warehouse and are rightly refused (409), which this test counts as a failure.
        "--locations 3 --variants 1000 --seconds 1 --clients 2 --rounds 1 --workers 1",
        expect=(
            r"Queries per order \(token auth, sourcing, order, lines, payment, stock, events\): \d+",
            r"orders\s+[\d.]+ orders/s \(median of rounds\)\s+p50 [\d.]+ ms\s+p99 [\d.]+ ms",
            r"ratio\s+[\d.]+\s+\(target >= 0\.25\)",
            r"\s+CPU per order: server [\d.]+ ms, PostgreSQL [\d.]+ ms, load generator [\d.]+ ms",
            r"statuses\s+\{201: \d+\}",  # every order placed, none refused or failed
            r"oversell check\s+none: levels >= 0, ledger == levels, commitments == orders",
        ),
    ),
    Bench(
        "webhooks",
        "--orders 20 --clients 2 --locations 2 --variants 20",
        expect=(
            r"\d+ deliveries \(\d+ duplicates\), 2 clients",
            r"ratio intake / trivial: [\d.]+ \(target >= 0\.70\); p99 [\d.]+ ms \(target < 100 ms\)",
            r"processed \d+ deliveries in [\d.]+ s: .*",
            r"  ok  one stored row per webhook id",
            r"  ok  every repeat counted as a duplicate",
            r"  ok  no delivery failed or errored",
            r"  ok  one customer per online customer",
            r"  ok  no online order placed twice",
            r"  ok  every online order placed once \(unless cancelled before it arrived\)",
            r"  ok  orders cancelled online are cancelled in Omni",
        ),
        forbid=(r"  FAIL .*", r"  delivery \d+: .*"),
    ),
    Bench(
        "live_updates",
        "--clients 5 --batch 5 --rate 5 --seconds 1",
        expect=(
            r"Live updates: .*, Redis wake-ups \(redis://.*/14\); database pool on",
            r"5 streams open in [\d.]+ s; committing 5/s for 1 s",
            r"[1-9]\d* commits x 5 screens = \d+ deliveries; missing 0",
            r"commit-to-screen latency: p50 \d+ ms, p95 \d+ ms, p99 \d+ ms, max \d+ ms "
            r"\(target p95 <= 250 ms: (met|NOT met)\)",
        ),
        redis_db=14,
    ),
    Bench(
        "customer_lookup",
        "--customers 300 --queries 5",
        expect=(
            r"Seeded 300 customers in [\d.]+ s",
            r"Customers: 300; loyalty cards: [1-9][\d,]*; PostgreSQL \d+",
            r"card, prefix\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+",
            r"Worst API p99: [\d.]+ ms \(target: results within 100 ms\)",
            r"Query plans \(first query of each kind, each step of the search plan\):",
        ),
    ),
    Bench(
        "insights",
        "--customers 300 --lines 1500 --stores 2",
        expect=(
            r"  [\d,]+ orders, 1,500 lines, 5,000 stock levels in \d+ s",
            r"nightly run: [\d.]+ s, peak \d+ MiB, steps \{.*\}",
            r"plain GROUP BY over the same lines: [\d.]+ s \([1-9][\d,]* customers\)",
            r"\| customers scored \| [1-9][\d,]* \|",
            r"\| BG/NBD fitted .* \| r=\d[\d.]*, alpha=[\d.]+ days, a=\d[\d.]*, b=\d[\d.]* \|",
            r"Target: under 2 minutes and 2 GiB on 2 cores: \*\*(meets|MISSES)\*\*\.",
        ),
        forbid=(r"Appended to .*",),
    ),
    Bench(
        "planning",
        "--stores 2 --variants 50 --days 14 --repeat 1 --exit-zero",
        expect=(
            r"Data: 150 levels, [1-9][\d,]* sale movements \([\d,]+ movements in all\)",
            r"\| planning run: figures \+ both planners \+ transfers written \| [\d.]+ s .*",
            r"The run planned 2 stores, got back [\d,]+ candidate rows and planned [1-9][\d,]* lines .*",
            r"Then automatic approval .* approving [1-9]\d* transfers / [1-9][\d,]* lines .*",
            r"Result: \*\*(PASS|FAIL)\*\* .*",
        ),
        forbid=(r"Recorded in .*",),
    ),
]


def _bench_scripts() -> set[str]:
    return {path.stem for path in (ROOT / "bench").glob("*.py")} - {"__init__", "common", "urls"}


def test_every_bench_script_has_a_smoke_run() -> None:
    assert {bench.script for bench in BENCHES} == _bench_scripts()


# --- Databases ---------------------------------------------------------------------------------------


def _server() -> tuple[str, str]:
    """The PostgreSQL server the suite runs on (scheme://netloc) and the suite's database name."""
    url = urlsplit(os.environ.get("DATABASE_URL", ""))
    if not url.scheme.startswith("postgres"):
        pytest.skip("the benchmarks need PostgreSQL: DATABASE_URL is not a postgres:// URL")
    return f"{url.scheme}://{url.netloc}", url.path.lstrip("/")


def _migrations_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@contextmanager
def _template_lock(server: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK])
        try:
            yield admin
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK])


def _exists(admin: psycopg.Connection, name: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _drop(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _child_env(**extra: str) -> dict[str, str]:
    """The suite's environment without its own database, Redis and test switches."""
    suite_only = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "OMNI_TESTING", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {**{key: value for key, value in os.environ.items() if key not in suite_only}, **extra}


@pytest.fixture(scope="session")
def bench_template() -> tuple[str, str, str]:
    """(server, suite database name, template name): a migrated database to clone, built once."""
    server, suite = _server()
    template = f"{TEMPLATE_PREFIX}{_migrations_digest()}"
    with _template_lock(server) as admin:
        if not _exists(admin, template):
            building = f"{template}_building"
            _drop(admin, building)
            # Migrated the way the scripts migrate their own database.
            subprocess.run(
                [sys.executable, "-c", "from bench.common import bench_setup; bench_setup()"],
                cwd=ROOT,
                env=_child_env(BENCH_DATABASE_URL=f"{server}/{building}"),
                check=True,
                timeout=SCRIPT_TIMEOUT,
            )
            admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(*map(sql.Identifier, (building, template))))
            # Templates of earlier migrations: nobody clones them any more.
            stale = admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
                [f"{TEMPLATE_PREFIX}%", template],
            ).fetchall()
            for (name,) in stale:
                with suppress(psycopg.Error):
                    _drop(admin, name)
    return server, suite, template


@pytest.fixture
def bench_database(request: pytest.FixtureRequest, bench_template: tuple[str, str, str]) -> Iterator[str]:
    """BENCH_DATABASE_URL of a fresh database for one script, cloned from the template, dropped after."""
    server, suite, template = bench_template
    name = f"omni_bench_smoke_{request.node.callspec.id}_{suite}"[:63]  # PostgreSQL's limit on names
    with _template_lock(server) as admin:
        _drop(admin, name)
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            _drop(admin, name)


# --- Running a script --------------------------------------------------------------------------------


def _run(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run to the end (or the timeout) with stdout and stderr merged; kill any children it leaves."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{' '.join(command[1:])} did not finish within {SCRIPT_TIMEOUT} s:\n{output}")
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a uvicorn or client left behind by a failed run
    return process.returncode, output


def _redis_url(db: int) -> str:
    url = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return f"{url.scheme}://{url.netloc}/{db}"


@pytest.mark.parametrize("bench", BENCHES, ids=[bench.script for bench in BENCHES])
def test_bench_script_runs(bench: Bench, bench_database: str) -> None:
    # Given a throwaway database and the script's smallest sensible sizes
    env = _child_env(BENCH_DATABASE_URL=bench_database)
    if bench.redis_db is not None:
        env["REDIS_URL"] = _redis_url(bench.redis_db)
    performance_doc = PERFORMANCE_DOC.read_bytes() if PERFORMANCE_DOC.exists() else None

    # When it runs as a person runs it
    command = [sys.executable, f"bench/{bench.script}.py", *bench.args.split()]
    returncode, output = _run(command, env)

    # Then it succeeds, prints its result lines, and its own checks passed
    assert returncode == 0, output
    assert "Traceback" not in output, output
    lines = output.splitlines()
    missing = [pattern for pattern in bench.expect if not any(re.fullmatch(pattern, line) for line in lines)]
    assert not missing, f"lines matching {missing} not in the output:\n{output}"
    found = [line for line in lines for pattern in bench.forbid if re.fullmatch(pattern, line)]
    assert not found, f"unexpected {found} in the output:\n{output}"
    assert (PERFORMANCE_DOC.read_bytes() if PERFORMANCE_DOC.exists() else None) == performance_doc
