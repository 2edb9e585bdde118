"""`manage.py ping_worker`: send omni.tasks.ping through the broker and wait for a worker to run it."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from omni.tasks import ping, ping_result


class Command(BaseCommand):
    help = "Check the task pipeline: a Celery worker must run a ping task within the timeout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait (default 15)")

    def handle(self, *args: Any, **options: Any) -> None:
        token = uuid.uuid4().hex
        started = time.monotonic()
        ping.delay(token)
        deadline = started + options["timeout"]
        while time.monotonic() < deadline:
            if ping_result(token):
                self.stdout.write(f"pong from a worker in {time.monotonic() - started:.2f}s")
                return
            time.sleep(0.2)
        raise CommandError(f"no worker ran the ping within {options['timeout']:.0f}s: is the worker running?")
