"""Celery tasks of the transfers app: the planners. Each is idempotent and restartable.

A planner run is keyed by its planners and a time bucket (a day by default), so a second beat tick,
a manual re-run or a redelivery after a worker died (`kill -9`; tasks ack late) finds the run
and creates nothing twice; a run that died midway wrote nothing (one transaction) and is redone.
Their default schedules are django-celery-beat rows (migration 0002_beat_schedules), editable in
the admin, where `kwargs` chooses the planners and the bucket.
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from . import services


def plan_key(planners: list[str], now: datetime, bucket_minutes: int) -> str:
    """`replenishment:2026-11-23T00:00`: the planners and the start of the bucket `now` falls in."""
    bucket = max(1, int(bucket_minutes)) * 60
    start = datetime.fromtimestamp(int(now.timestamp()) // bucket * bucket, tz=now.tzinfo)
    return f"{'+'.join(planners)}:{start:%Y-%m-%dT%H:%M}"


@shared_task(ignore_result=True, soft_time_limit=1800, time_limit=2100)
def transfers_plan_task(planners: list[str] | None = None, bucket_minutes: int = 1440, key: str | None = None) -> int:
    """Plan (or find the plan of this bucket), then approve its transfers that are within policy.

    Returns the plan run's id.
    """
    chosen = list(planners or ["replenishment", "rebalancing"])
    now = timezone.now()
    outcome = services.plan_run(planners=chosen, key=key or plan_key(chosen, now, bucket_minutes), now=now)
    services.plan_auto_approve(run_id=outcome.run.pk)
    return outcome.run.pk
