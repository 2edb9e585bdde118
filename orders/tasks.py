"""Celery tasks of the orders app: emails after commit, card refunds, following transfers.

Each takes ids, loads, and calls a function that is safe to run twice. The transfer follow-up
runs every minute (django-celery-beat row created by migration 0002_beat_schedule).
"""

from __future__ import annotations

from celery import shared_task

from . import emails, services


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_order_confirmation(*, order_id: int) -> bool:
    return emails.send_order_confirmation(order_id=order_id)


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_receipt(*, order_id: int, email: str) -> bool:
    return emails.send_receipt(order_id=order_id, email=email)


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_shipped(*, fulfilment_id: int) -> bool:
    return emails.send_shipped(fulfilment_id=fulfilment_id)


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_ready_for_pickup(*, fulfilment_id: int) -> bool:
    return emails.send_ready_for_pickup(fulfilment_id=fulfilment_id)


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def order_placed_followups(*, order_id: int) -> None:
    """After an order committed: the customer's purchase record and points, then the confirmation
    email. Both are idempotent, so a retry (the mail server was down) repeats nothing."""
    services.order_record_customer_purchase(order_id=order_id)
    emails.send_order_confirmation(order_id=order_id)


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def record_customer_purchase(*, order_id: int) -> bool:
    """The customer's purchase record and loyalty points for a placed order (after commit)."""
    return services.order_record_customer_purchase(order_id=order_id)


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def refund_card(*, refund_id: int) -> bool:
    """Give a card refund back through the terminal adapter, outside any stock transaction."""
    return services.refund_card_process(refund_id=refund_id)


@shared_task(ignore_result=True)
def fulfilments_sync_transfers_task() -> int:
    """Collect orders whose transfer arrived become ready for pickup (emails the code)."""
    return services.fulfilments_sync_transfers()
