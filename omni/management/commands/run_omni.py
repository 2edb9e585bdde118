"""`manage.py run_omni`: the whole of Omni in one foreground command.

Starts three child processes and watches them:
  web     uvicorn serving omni.asgi:application (HTTP and the server-sent events of live screens)
  worker  a Celery worker
  beat    Celery beat with django_celery_beat's DatabaseScheduler

Ctrl-C (SIGINT) or SIGTERM stops all three cleanly (each gets SIGTERM, then SIGKILL after a grace
period). If one child dies on its own, the others are stopped and the command exits non-zero, so
a supervisor (systemd, a container runtime) restarts the whole set.

Each child runs in its own process group, so the terminal's Ctrl-C reaches only this command,
which then stops the children once and in order; a child whose parent dies gets SIGTERM from the
kernel (Linux PR_SET_PDEATHSIG, see LAUNCHER), so nothing is left running behind a killed run_omni.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEMO_USERNAMES = ("admin", "manager", "associate", "warehouse")
STOP_GRACE_SECONDS = 15.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)


# Children start through this tiny launcher: on Linux it asks the kernel to SIGTERM the child when
# run_omni dies (PR_SET_PDEATHSIG survives exec), then becomes the real program. A launcher instead
# of Popen(preexec_fn=...) because preexec_fn is unsafe once the output threads are running.
LAUNCHER = """
import ctypes, os, signal, sys
parent = int(sys.argv[1])
try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
except OSError:
    pass  # not Linux: the process group still gets our SIGTERM on a normal stop
if os.getppid() != parent:
    sys.exit(1)  # run_omni died before the line above took effect
os.execv(sys.argv[2], sys.argv[2:])
"""


class Command(BaseCommand):
    help = "Run Omni: the web server (uvicorn), a Celery worker and Celery beat, in the foreground."
    requires_system_checks = []  # the children run the checks; this process only supervises

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--host",
            default=os.environ.get("OMNI_HOST", "127.0.0.1"),
            help="address to listen on; 0.0.0.0 serves the store's tablets on the network (default 127.0.0.1)",
        )
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
        parser.add_argument(
            "--pool",
            default=os.environ.get("CELERY_POOL", ""),
            help="Celery worker pool; default solo on the embedded broker, prefork otherwise",
        )
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("CELERY_CONCURRENCY", "0")))
        parser.add_argument("--no-worker", action="store_true", help="do not start the Celery worker")
        parser.add_argument("--no-beat", action="store_true", help="do not start Celery beat")

    # ---- the children ------------------------------------------------------------------------
    def _children(self, options: dict[str, Any]) -> list[Child]:
        python = sys.executable
        log_level = os.environ.get("LOG_LEVEL", "INFO").lower()
        web = [
            python, "-m", "uvicorn", "omni.asgi:application",
            "--host", options["host"], "--port", str(options["port"]),
            "--workers", str(max(1, options["web_workers"])),
            "--lifespan", "off",  # Django's ASGI handler does not speak the lifespan protocol
            "--log-level", log_level,
            "--timeout-graceful-shutdown", "5",  # live screens hold SSE streams open
        ]  # fmt: skip
        if settings.SECURE_PROXY_SSL_HEADER:
            web += ["--proxy-headers", "--forwarded-allow-ips", os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")]
        children = [Child("web", web)]
        if not options["no_worker"]:
            # The embedded broker (Kombu's filesystem transport) and SQLite are single-machine and
            # lock-based: the solo pool runs one task at a time in the worker process itself, with
            # no forked children fighting over the SQLite write lock.
            pool = options["pool"] or ("solo" if settings.CELERY_BROKER_URL.startswith("filesystem") else "prefork")
            worker = [python, "-m", "celery", "-A", "omni", "worker", "--loglevel", log_level, "--pool", pool]
            if options["concurrency"] and pool != "solo":
                worker += ["--concurrency", str(options["concurrency"])]
            if settings.CELERY_BROKER_URL.startswith("filesystem"):
                worker += ["--without-mingle", "--without-gossip"]  # no broadcast on the file broker
            # Celery forks its pool: a connection pool must not cross a fork, so workers keep
            # plain persistent connections (one thread per process) instead.
            children.append(Child("worker", worker, env={"DATABASE_POOL": "0"}))
        if not options["no_beat"]:
            beat = [
                python, "-m", "celery", "-A", "omni", "beat", "--loglevel", log_level,
                "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile=",  # no pid file left behind in the working directory
            ]  # fmt: skip
            children.append(Child("beat", beat, env={"DATABASE_POOL": "0"}))
        return children

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-c", LAUNCHER, str(os.getpid()), *child.argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **child.env},
        )
        child.pump = threading.Thread(target=self._pump, args=(child.name, child.process.stdout), daemon=True)
        child.pump.start()

    def _pump(self, name: str, stream: IO[bytes] | None) -> None:
        """Copy a child's output to ours, each line prefixed with the child's name."""
        if stream is None:
            return
        prefix = f"{name:>6} | "
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._output_lock:
                sys.stdout.write(prefix + line + "\n")
                sys.stdout.flush()
        stream.close()

    def _stop_all(self, children: list[Child]) -> None:
        running = [c for c in children if c.process is not None and c.process.poll() is None]
        for child in running:
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(f"{child.name} did not stop within {STOP_GRACE_SECONDS:.0f}s: killing it")
                self._signal(child, signal.SIGKILL)
                child.process.wait()
        for child in children:
            if child.pump is not None:
                child.pump.join(timeout=2)

    @staticmethod
    def _signal(child: Child, signum: int) -> None:
        """Signal the child's whole process group (uvicorn and prefork workers have children)."""
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signum)

    # ---- output ------------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        with self._output_lock:
            sys.stdout.write(f"  omni | {message}\n")
            sys.stdout.flush()

    def _banner(self, options: dict[str, Any], children: list[Child]) -> None:
        host = options["host"]
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - a comparison
        url = f"http://{shown_host}:{options['port']}/"
        password = settings.OMNI_DEMO_PASSWORD
        lines = [
            "",
            "Omni is starting",
            f"  Open        {url}" + ("  (listening on every interface)" if host in ("0.0.0.0", "::") else ""),  # noqa: S104
            f"  Mode        {self._mode()}",
            f"  Processes   {', '.join(f'{c.name} (pid {c.process.pid})' for c in children if c.process)}",
            f"  Demo logins {', '.join(DEMO_USERNAMES)} - password: {password}",
        ]
        missing = self._missing_demo_users()
        if missing:
            lines.append(f"              (not in the database yet: {', '.join(missing)}; run `manage.py seed_demo`)")
        if host in ("0.0.0.0", "::") and "*" not in settings.ALLOWED_HOSTS:  # noqa: S104 - a comparison
            lines.append(
                f"  Tablets     add this machine's address to ALLOWED_HOSTS (now: {', '.join(settings.ALLOWED_HOSTS)})"
            )
        lines += ["  Stop        Ctrl-C", ""]
        with self._output_lock:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()

    @staticmethod
    def _mode() -> str:
        database = settings.DATABASES["default"]
        if settings.EMBEDDED:
            db = f"SQLite {database['NAME']}"
        else:
            db = f"PostgreSQL {database.get('HOST') or 'localhost'}/{database.get('NAME')}"
        if settings.CELERY_BROKER_URL.startswith("filesystem"):
            broker = f"Kombu filesystem broker in {settings.VAR_DIR / 'broker'}"
        else:
            broker = f"broker {_redact(settings.CELERY_BROKER_URL)}"
        kind = "embedded default" if settings.EMBEDDED else "external services"
        return f"{kind}: {db} + {broker}"

    @staticmethod
    def _missing_demo_users() -> list[str]:
        from django.contrib.auth import get_user_model

        try:
            present = set(
                get_user_model().objects.filter(username__in=DEMO_USERNAMES).values_list("username", flat=True)
            )
        except Exception:  # noqa: BLE001 - no table yet: every demo user is missing
            present = set()
        return [name for name in DEMO_USERNAMES if name not in present]

    # ---- main --------------------------------------------------------------------------------
    def handle(self, *args: Any, **options: Any) -> None:
        self._output_lock = threading.Lock()
        if shutil.which(sys.executable) is None and not os.path.exists(sys.executable):
            raise CommandError(f"cannot find the Python interpreter {sys.executable}")
        self._prepare()

        children = self._children(options)
        stop_requested = threading.Event()
        received: list[int] = []

        def on_signal(signum: int, frame: Any) -> None:
            received.append(signum)
            stop_requested.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        failed: Child | None = None
        try:
            for child in children:
                self._start(child)
            self._banner(options, children)
            while not stop_requested.is_set():
                failed = next((c for c in children if c.process and c.process.poll() is not None), None)
                if failed is not None:
                    break
                stop_requested.wait(0.5)
        finally:
            if failed is not None:
                assert failed.process is not None
                self._say(f"{failed.name} exited with code {failed.process.returncode}: stopping the others")
            elif received:
                self._say(f"{signal.Signals(received[0]).name} received: stopping web, worker and beat")
            self._stop_all(children)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failed is not None:
            raise SystemExit(1)
        self._say("stopped")

    def _prepare(self) -> None:
        """What every start needs: the cache table (embedded cache) and, without finders, static files."""
        call_command("createcachetable", verbosity=0)
        if not settings.WHITENOISE_USE_FINDERS:
            call_command("collectstatic", interactive=False, verbosity=0)


def _redact(url: str) -> str:
    """A broker URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
