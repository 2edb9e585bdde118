"""Celery tasks of the online-store integration. Each takes ids, loads, and calls a service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from . import services

logger = logging.getLogger(__name__)
RETRYABLE = (DatabaseError, ConnectionError, TimeoutError, services.RetryLater)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RETRYABLE,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def process_delivery(self, *, delivery_id: int) -> str:
    return services.delivery_process(delivery_id=delivery_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def process_deliveries(*, delivery_ids: list[int]) -> int:
    """A burst queued by the endpoint (online.queueing): process each delivery in turn.

    One that must wait (its order is not in Omni yet) or failed transiently goes on alone to
    `process_delivery` and its backoff. Redelivered after a lost worker, the ones already done are
    skipped (delivery_process is idempotent). Returns how many reached a final status here.
    """
    done = 0
    for delivery_id in delivery_ids:
        try:
            services.delivery_process(delivery_id=delivery_id)
        except RETRYABLE:
            process_delivery.apply_async(kwargs={"delivery_id": delivery_id}, countdown=2)
        except Exception:
            # Recorded on the row as failed by delivery_process; the sweeper retries it.
            logger.exception("delivery %s failed", delivery_id)
        else:
            done += 1
    return done


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
