"""Celery tasks of the insights app."""

from __future__ import annotations

from celery import shared_task

from .errors import InsightRunInProgressError
from .services import insight_run_nightly


@shared_task(ignore_result=True, soft_time_limit=3000, time_limit=3600)
def insights_nightly_task() -> int | None:
    """Refresh every insight (scheduled nightly by migration 0002). Idempotent: a second run the
    same day recomputes the same figures. Returns the run id, or None when a run is already going."""
    try:
        return insight_run_nightly().pk
    except InsightRunInProgressError:
        return None
