"""Live updates on the embedded default: SQLite, no Redis, separate web and writer processes.

Runs real processes on a throwaway SQLite file (OMNI_VAR_DIR in a temporary directory): uvicorn
serves the stream; another Python process commits a stock change (as a Celery worker or a second
web process would); the hub, with no Redis to wake it, finds the change by polling the outbox.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

SETUP = """
import json
from decimal import Decimal
from django.contrib.auth.models import Group
from django.test import Client
from inventory.models import Location, Product, Variant
from omni.models import User
store = Location.objects.create(code="emb-1", name="Embedded store")
product = Product.objects.create(style="EMB-1", name="Embedded tee", brand="B", category="tops")
variant = Variant.objects.create(product=product, sku="EMB-1-M", size="M", colour="Red", price=Decimal("5"))
user = User.objects.create_user("emb-associate", password="x-embedded-1", home_location=store)
user.groups.add(Group.objects.get(name="store_associate"))
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(user)
print(json.dumps({"store": store.pk, "variant": variant.pk, "session": client.cookies["sessionid"].value}))
"""

WRITE = """
import sys
from inventory import services
services.stock_receive(actor=services.SystemActor("embedded-test"), location_id=int(sys.argv[1]),
                       variant_id=int(sys.argv[2]), quantity=2)
"""


def _environment(var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        {
            "OMNI_VAR_DIR": str(var_dir),
            "OMNI_TESTING": "1",
            "DJANGO_SETTINGS_MODULE": "omni.settings",
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def _django(env: dict[str, str], code: str, *args: str) -> str:
    script = "import django; django.setup()\n" + code
    result = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_change_committed_by_another_process_reaches_the_stream_without_redis(tmp_path):
    env = _environment(tmp_path)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    facts = json.loads(_django(env, SETUP).strip().splitlines()[-1])
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "omni.asgi:application", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/login/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        cookies = {"sessionid": facts["session"]}
        with (
            httpx.Client(base_url=base, cookies=cookies, timeout=httpx.Timeout(5.0, read=5.0)) as client,
            client.stream("GET", f"/live/stream/?topics=variant:{facts['variant']}") as response,
        ):
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines) == "retry: 1000"
            assert next(lines) == ": connected"

            started = time.monotonic()
            _django(env, WRITE, str(facts["store"]), str(facts["variant"]))
            committed = time.monotonic()
            received = []
            for line in lines:
                received.append(line)
                if line.startswith("data:"):
                    break
            arrived = time.monotonic()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=15)

    assert f"event: stock-{facts['variant']}" in received
    assert json.loads(received[-1].removeprefix("data: ")) == {
        "levels": [[facts["store"], facts["variant"]]],
        "reason": "receipt",
    }
    assert arrived - committed < 1.0, (started, committed, arrived)
