"""Celery tasks of the online-store integration. Each takes ids, loads, and calls a service."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from . import services


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError, ConnectionError, TimeoutError, services.RetryLater),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def process_delivery(self, *, delivery_id: int) -> str:
    return services.delivery_process(delivery_id=delivery_id)


@shared_task
def requeue_stuck_deliveries() -> int:
    return services.deliveries_requeue_stuck()


@shared_task
def inventory_push_collect() -> int:
    from . import push

    return push.inventory_push_collect()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=10)
def inventory_push_send(self, *, push_id: int) -> str:
    from . import push

    outcome = push.inventory_push_send(push_id=push_id)
    if outcome.retry_after is not None:
        raise self.retry(countdown=outcome.retry_after)
    return outcome.status


@shared_task
def inventory_reconcile() -> int:
    from . import push

    return push.inventory_reconcile_all()
