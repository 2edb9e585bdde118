"""Customers built through customers.services, so every invariant (normalisation, audit) holds."""

from __future__ import annotations

import itertools
from decimal import Decimal

from django.utils import timezone

from customers import services
from customers.models import Customer
from omni.actors import SystemActor

SYSTEM = SystemActor("tests")
_numbers = itertools.count(1)


def next_phone() -> str:
    """A distinct valid US (Austin) number per call."""
    n = next(_numbers)
    return f"+1512{(2000000 + n):07d}"


def make_customer(*, actor=SYSTEM, name=None, email=None, phone=None, **kwargs) -> Customer:
    """A customer with a unique name, email and phone unless given ("" leaves a field empty)."""
    n = next(_numbers)
    return services.customer_create(
        actor=actor,
        name=f"Customer {n}" if name is None else name,
        email=f"customer{n}@example.com" if email is None else email,
        phone=next_phone() if phone is None else phone,
        **kwargs,
    )


def record_purchase(
    customer,
    *,
    amount="100.00",
    lines=None,
    occurred_at=None,
    order_ref=None,
    channel="store",
    location_id=None,
    actor=SYSTEM,
):
    n = next(_numbers)
    ref = order_ref or f"SO-{n}"
    return services.customer_record_purchase(
        customer_id=customer.pk,
        order_ref=ref,
        channel=channel,
        location_id=location_id,
        amount=Decimal(amount),
        lines=lines if lines is not None else [(None, "Northwind", "tops", 1, Decimal(amount))],
        occurred_at=occurred_at or timezone.now(),
        idempotency_key=f"purchase:{ref}",
        actor=actor,
    )
