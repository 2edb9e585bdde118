"""Handlers for topics whose effects live in higher apps: customers now, orders when they land.

The online app sits above customers and orders and calls their services; they never import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from customers.models import ConsentChannel
from customers.services import customer_find_or_create, customer_set_consent

from .models import DeliveryStatus, WebhookDelivery
from .services import ACTOR, claim_version, parse_time, require

CONSENT_STATES = {"subscribed": True, "unsubscribed": False}


def _consent(payload: dict[str, Any], key: str) -> tuple[bool | None, Any]:
    consent = payload.get(key) or {}
    return CONSENT_STATES.get(str(consent.get("state", ""))), consent.get("consent_updated_at")


def handle_customer(payload: dict[str, Any], delivery: WebhookDelivery) -> str:
    """customers/create|update: match by online id, email, phone (ambiguity goes to review), never merge."""
    customer_id, updated = require(payload, "id", "updated_at")
    if not claim_version(
        resource_type="customer", resource_id=int(customer_id), updated_at=parse_time(updated), delivery=delivery
    ):
        return DeliveryStatus.STALE
    email_consent, email_at = _consent(payload, "email_marketing_consent")
    sms_consent, sms_at = _consent(payload, "sms_marketing_consent")
    name = " ".join(part for part in (payload.get("first_name"), payload.get("last_name")) if part)
    result = customer_find_or_create(
        actor=ACTOR,
        name=name,
        email=payload.get("email") or "",
        phone=payload.get("phone") or "",
        online_customer_id=int(customer_id),
        source="online",
        email_consent=email_consent,
        consent_at=parse_time(email_at, "email_marketing_consent.consent_updated_at") if email_at else None,
        strict=False,
    )
    # Each channel's consent carries its own time: SMS is recorded separately with its own.
    if sms_consent is not None and (result.customer.phone or not sms_consent):
        customer_set_consent(
            customer_id=result.customer.pk,
            channel=ConsentChannel.SMS,
            granted=sms_consent,
            actor=ACTOR,
            source="online",
            occurred_at=parse_time(sms_at, "sms_marketing_consent.consent_updated_at") if sms_at else None,
        )
    return f"customer {result.customer.pk}: {result.outcome}"


HANDLERS: dict[str, Callable[[dict[str, Any], WebhookDelivery], str]] = {
    "customers/create": handle_customer,
    "customers/update": handle_customer,
}
