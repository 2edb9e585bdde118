"""Celery tasks of the inventory app. Each calls a service; each is safe to run twice.

The default schedules of expiry (every minute) and reconciliation (nightly at 02:30 UTC) are
django-celery-beat rows created by migration 0004_beat_schedules and editable in the admin.
"""

from __future__ import annotations

from celery import shared_task

from . import services
from .reconciliation import stock_reconcile


@shared_task(ignore_result=True)
def reservations_expire_task() -> int:
    """Release every hold past its expiry. Idempotent: an expired hold is closed once."""
    return services.reservations_expire()


@shared_task(ignore_result=True, soft_time_limit=3600, time_limit=3900)
def stock_reconcile_task() -> int:
    """Compare every level with the ledger and record the run (reports drift, fixes nothing).

    Returns the run's id.
    """
    return stock_reconcile(triggered_by="system:stock_reconcile_task").pk


@shared_task(ignore_result=True)
def live_events_prune_task() -> int:
    """Delete live-screen outbox rows (omni.LiveEvent) older than an hour; returns how many.

    Stock changes write those rows (omni.live), so the task lives with them here, where Celery's
    autodiscovery finds it. Safe to run twice.
    """
    from omni.live_stream import live_events_prune

    return live_events_prune()
