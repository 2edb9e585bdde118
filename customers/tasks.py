"""Celery tasks of the customers app: take ids, call a service, idempotent."""

from __future__ import annotations

from celery import shared_task

from .selectors import customers_for_tier_refresh
from .services import loyalty_refresh_tier


@shared_task(ignore_result=True, soft_time_limit=1800, time_limit=2000)
def loyalty_refresh_tiers_task(batch: int = 5000) -> int:
    """Re-evaluate tiers whose rolling 12-month spend may have changed (purchases age out of the
    window daily). Idempotent; scheduled nightly by migration 0003. Returns accounts evaluated."""
    customer_ids = list(customers_for_tier_refresh().values_list("customer_id", flat=True)[:batch])
    for customer_id in customer_ids:
        loyalty_refresh_tier(customer_id=customer_id)
    return len(customer_ids)
