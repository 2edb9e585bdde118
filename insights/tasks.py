"""Celery tasks of the insights app."""

from __future__ import annotations

from celery import shared_task

from .errors import InsightRunInProgressError
from .services import insight_run_nightly


@shared_task(ignore_result=True, soft_time_limit=3000, time_limit=3600)
def insights_nightly_task(triggered_by: str | None = None) -> int | None:
    """Refresh every insight (scheduled nightly by migration 0002; `triggered_by` names the admin
    of a "Refresh now"). Idempotent: a second run the same day recomputes the same figures.
    Returns the run id, or None when a run is already going."""
    try:
        return (insight_run_nightly(triggered_by=triggered_by) if triggered_by else insight_run_nightly()).pk
    except InsightRunInProgressError:
        return None
