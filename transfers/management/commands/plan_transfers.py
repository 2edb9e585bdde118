"""`manage.py plan_transfers`: run the planners now (what the beat schedule does), and approve what is
within policy. Idempotent per key: the default key is the planners and the current minute."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from transfers import planning, services
from transfers.tasks import plan_key


class Command(BaseCommand):
    help = "Run the transfer planners now (replenishment and rebalancing by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--planners", default="replenishment,rebalancing", help="comma-separated")
        parser.add_argument("--key", default="", help="idempotency key (default: planners + the current minute)")
        parser.add_argument("--no-approve", action="store_true", help="leave every planned transfer proposed")

    def handle(self, *args: Any, **options: Any) -> None:
        planners = [name.strip() for name in options["planners"].split(",") if name.strip()]
        unknown = sorted(set(planners) - set(planning.PLANNERS))
        if unknown or not planners:
            raise CommandError(f"Choose planners from: {', '.join(planning.PLANNERS)}.")
        now = timezone.now()
        key = options["key"] or f"manual:{plan_key(planners, now, 1)}"
        outcome = services.plan_run(planners=planners, key=key, now=now)
        approved = 0 if options["no_approve"] else services.plan_auto_approve(run_id=outcome.run.pk)
        counts = outcome.run.counts
        verb = "planned" if outcome.created else "already planned"
        self.stdout.write(
            f"{key}: {verb} {counts.get('lines', 0)} lines in {counts.get('transfers', 0)} transfers "
            f"({outcome.run.duration_ms} ms); {approved} approved automatically"
        )
