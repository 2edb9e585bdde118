"""`manage.py run_omni` on the embedded default: web, worker and beat start, tasks flow, and it stops
cleanly on Ctrl-C or when a child dies. Real processes on a throwaway SQLite + filesystem broker."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.celery_worker]

BASE_DIR = Path(__file__).resolve().parents[2]


def _embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "OMNI_TESTING", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(DEBUG="1", OMNI_VAR_DIR=str(var_dir), LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    return env


def _manage(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """run_omni in the background, its output collected line by line."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_omni", "--port", str(port)],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} never appeared in run_omni's output:\n{self.output}")

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                    return response.status, response.read()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def pids(self) -> dict[str, int]:
        match = self.wait_for(r"Processes +(.+)")
        return {name: int(pid) for name, pid in re.findall(r"(\w+) \(pid (\d+)\)", match.group(1))}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory) -> dict[str, str]:
    env = _embedded_env(tmp_path_factory.mktemp("omni-var"))
    migrated = _manage(env, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr
    return env


def test_runs_web_worker_and_beat_and_stops_all_on_ctrl_c(embedded_env):
    omni = Running(embedded_env, _free_port())
    try:
        pids = omni.pids()
        omni.wait_for(r"Uvicorn running on")
        omni.wait_for(r"celery@\S+ ready")
        omni.wait_for(r"beat: Starting")

        status, body = omni.get("/healthz")
        login_status, login_page = omni.get("/login/")
        pinged = _manage(embedded_env, "ping_worker", "--timeout", "30", timeout=60)
    finally:
        omni.stop()

    assert status == 200 and json.loads(body)["status"] == "ok"
    assert login_status == 200 and b"Sign in" in login_page
    assert pinged.returncode == 0, pinged.stderr + omni.output
    assert "pong from a worker" in pinged.stdout
    assert "embedded default: SQLite" in omni.output
    assert "No hostname was supplied" not in omni.output + pinged.stderr  # no Kombu warning per connection
    assert "Demo logins admin, manager, associate, warehouse - password: omni-demo" in omni.output
    assert set(pids) == {"web", "worker", "beat"}
    assert omni.process.returncode == 0, omni.output
    assert "SIGINT received" in omni.output
    assert not [name for name, pid in pids.items() if _alive(pid)]


def test_when_a_child_dies_the_others_stop_and_it_exits_non_zero(embedded_env):
    omni = Running(embedded_env, _free_port())
    try:
        pids = omni.pids()
        omni.wait_for(r"celery@\S+ ready")

        os.kill(pids["worker"], signal.SIGKILL)

        omni.process.wait(timeout=30)
    finally:
        omni.stop()

    assert omni.process.returncode == 1
    assert "worker exited with code -9: stopping the others" in omni.output
    assert not _alive(pids["web"]) and not _alive(pids["beat"])
