"""Customer emails, rendered from templates/orders/email/<name>.txt and .html.

Each function builds and sends one message; the Celery tasks in orders.tasks call them after the
transaction that caused them committed. Idempotency: an OrderEvent "email_<name>" records each
send, and a task that finds one for the same subject (fulfilment or order) does not send again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from inventory.services import SystemActor

from .models import Fulfilment, Order, OrderEvent
from .selectors import order_get

SYSTEM = SystemActor("orders-email")


def _send(*, name: str, subject: str, to: str, context: dict[str, Any]) -> None:
    location = context["order"].location  # the selling store; none for the online store
    # Times as the store's pages show them (the receipt on screen and in the email agree).
    with timezone.override(location.zone if location is not None else None):
        text = render_to_string(f"orders/email/{name}.txt", context)
        html = render_to_string(f"orders/email/{name}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])
    message.attach_alternative(html, "text/html")
    message.send()


def _already_sent(order_id: int, kind: str, fulfilment_id: int | None = None) -> bool:
    events = OrderEvent.objects.filter(order_id=order_id, kind=kind)
    if fulfilment_id is not None:
        events = events.filter(fulfilment_id=fulfilment_id)
    return events.exists()


def _log(order: Order, kind: str, message: str, fulfilment_id: int | None = None) -> None:
    OrderEvent.objects.create(
        order=order,
        fulfilment_id=fulfilment_id,
        kind=kind,
        message=message,
        actor_label=SYSTEM.label,
        created_at=timezone.now(),
    )


def send_order_confirmation(*, order_id: int) -> bool:
    order = order_get(number=order_id)
    if not order.contact_email or _already_sent(order.pk, "email_confirmation"):
        return False
    _send(
        name="confirmation",
        subject=f"Your order {order.number}",
        to=order.contact_email,
        context={
            "order": order,
            "lines": list(order.lines.all()),
            "fulfilments": list(order.fulfilments.all()),
            "payments": list(order.payments.all()),
        },
    )
    _log(order, "email_confirmation", "Order confirmation emailed.")
    return True


def send_receipt(*, order_id: int, email: str) -> bool:
    """A copy of the receipt on request (the associate typed an address): sent every time asked."""
    order = order_get(number=order_id)
    _send(
        name="receipt",
        subject=f"Receipt for {order.number}",
        to=email,
        context={"order": order, "lines": list(order.lines.all()), "payments": list(order.payments.all())},
    )
    _log(order, "email_receipt", "Receipt emailed.")
    return True


def send_shipped(*, fulfilment_id: int) -> bool:
    fulfilment = Fulfilment.objects.select_related("order", "source_location").get(pk=fulfilment_id)
    order = fulfilment.order
    if not order.contact_email or _already_sent(order.pk, "email_shipped", fulfilment.pk):
        return False
    _send(
        name="shipped",
        subject=f"Your order {order.number} is on its way",
        to=order.contact_email,
        context={"order": order, "fulfilment": fulfilment, "lines": list(fulfilment.lines.all())},
    )
    _log(order, "email_shipped", "Shipping email sent with tracking.", fulfilment.pk)
    return True


def send_ready_for_pickup(*, fulfilment_id: int) -> bool:
    """Sent each time a code is drawn (ready, or a new code), so it is keyed on the code."""
    fulfilment = Fulfilment.objects.select_related("order", "pickup_location").get(pk=fulfilment_id)
    order = fulfilment.order
    if not order.contact_email or not fulfilment.collection_code:
        return False
    kind = "email_ready"
    version = fulfilment.updated_at.isoformat()  # changes whenever a new code is drawn
    if OrderEvent.objects.filter(
        order_id=order.pk, kind=kind, fulfilment_id=fulfilment.pk, data__version=version
    ).exists():
        return False
    _send(
        name="ready_for_pickup",
        subject=f"Your order {order.number} is ready to collect",
        to=order.contact_email,
        context={
            "order": order,
            "fulfilment": fulfilment,
            "lines": list(fulfilment.lines.all()),
            "store": fulfilment.pickup_location,
        },
    )
    OrderEvent.objects.create(
        order=order,
        fulfilment=fulfilment,
        kind=kind,
        message="Ready-for-pickup email sent with the collection code.",
        actor_label=SYSTEM.label,
        created_at=timezone.now(),
        data={"version": version},
    )
    return True
