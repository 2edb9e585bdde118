"""Handlers for topics whose effects live in higher apps: customers and orders.

The online app sits above customers and orders and calls their services; they never import it.

Orders: `orders/create`, `orders/updated` and `orders/cancelled` are upserts of one resource,
ordered by `updated_at` (claim_version), so they are safe in any order: an update that overtakes
its create places the order; a create older than what was applied is skipped; an order cancelled
before we ever saw it is never placed. The order's stock is committed at the online location's
mapped Omni location, or where the sourcing rules find it; a shortage is an error an operator can
replay after receiving stock, never an oversell. Refunds restock per `restock_type` at the mapped
location once, keyed by the refund id; the store's own restock (an inventory_levels/update) is only
recorded, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from customers.models import ConsentChannel
from customers.services import customer_find_or_create, customer_set_consent
from inventory.models import Variant
from orders.models import Channel, FulfilmentKind, Order, OrderLine, Tender
from orders.pricing import cents
from orders.services import (
    Address,
    DraftLine,
    OrderDraft,
    ReturnInput,
    TenderInput,
    order_cancel,
    order_place,
    order_return,
)

from .models import DeliveryStatus, WebhookDelivery
from .services import (
    ACTOR,
    PayloadError,
    RetryLater,
    claim_version,
    location_for_online,
    parse_money,
    parse_time,
    require,
)

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


def external_ref(order_id: Any) -> str:
    return f"shopify:{order_id}"


def _find_order(order_id: Any) -> Order | None:
    return Order.objects.filter(channel=Channel.ONLINE, external_ref=external_ref(order_id)).first()


def handle_order(payload: dict[str, Any], delivery: WebhookDelivery) -> str:
    """orders/create | orders/updated | orders/cancelled: one upsert, newest `updated_at` wins."""
    order_id, updated = require(payload, "id", "updated_at")
    if not claim_version(
        resource_type="order", resource_id=int(order_id), updated_at=parse_time(updated), delivery=delivery
    ):
        return DeliveryStatus.STALE
    order = _find_order(order_id)
    cancelled = bool(payload.get("cancelled_at"))
    if order is None:
        if cancelled:
            return "cancelled before it reached Omni: nothing was committed"
        order = _place_online_order(payload)
        return f"placed {order.number}"
    if cancelled and order.status != "cancelled":
        order_cancel(actor=ACTOR, order_id=order.pk, reason=f"online: {payload.get('cancel_reason') or 'cancelled'}")
        return f"cancelled {order.number}"
    return f"{order.number} already recorded; nothing to change"


def _place_online_order(payload: dict[str, Any]) -> Order:
    items = [item for item in payload.get("line_items") or [] if not item.get("gift_card")]
    quantities = [int(item.get("current_quantity", item.get("quantity")) or 0) for item in items]
    wanted = [(item, quantity) for item, quantity in zip(items, quantities, strict=True) if quantity > 0]
    if not wanted:
        raise PayloadError("The order has no line with a quantity to fulfil.")
    variants = _variants_for(item for item, _ in wanted)
    missing = [str(item.get("sku") or item.get("variant_id")) for item, _ in wanted if _key(item) not in variants]
    if missing:
        raise PayloadError(
            f"Unknown SKU(s) {', '.join(missing)}: add them to the catalogue, then replay.", {"skus": missing}
        )
    source = location_for_online(payload.get("location_id"))
    prices = _charged_prices(payload, wanted)
    lines = [
        DraftLine(
            variant_id=variants[_key(item)].pk,
            quantity=quantity,
            kind=FulfilmentKind.SHIP,
            source_location_id=source.pk if source else None,
            unit_price=price,
        )
        for (item, quantity), price in zip(wanted, prices, strict=True)
    ]
    total = sum((price * quantity for (_, quantity), price in zip(wanted, prices, strict=True)), Decimal(0))
    customer_id = _customer_for(payload)
    shipping = payload.get("shipping_address") or {}
    result = order_place(
        actor=ACTOR,
        draft=OrderDraft(
            idempotency_key=f"online-order:{payload['id']}",
            lines=lines,
            tenders=[TenderInput(tender=Tender.ONLINE, amount=cents(total))],
            channel=Channel.ONLINE,
            customer_id=customer_id,
            contact_name=" ".join(p for p in (shipping.get("first_name"), shipping.get("last_name")) if p),
            contact_email=payload.get("email") or "",
            contact_phone=payload.get("phone") or "",
            address=Address(
                name=" ".join(p for p in (shipping.get("first_name"), shipping.get("last_name")) if p),
                line1=shipping.get("address1") or "",
                line2=shipping.get("address2") or "",
                city=shipping.get("city") or "",
                region=shipping.get("province_code") or "",
                postcode=shipping.get("zip") or "",
                country=shipping.get("country_code") or "US",
            ),
            external_ref=external_ref(payload["id"]),
        ),
    )
    return result.order


def _key(item: dict[str, Any]) -> str:
    return f"v{item['variant_id']}" if item.get("variant_id") else f"s{item.get('sku') or ''}"


def _variants_for(items: Any) -> dict[str, Variant]:
    """Variants by the online variant id, else by SKU (never by title)."""
    items = list(items)
    online_ids = [item["variant_id"] for item in items if item.get("variant_id")]
    skus = [item["sku"] for item in items if item.get("sku")]
    by_online = {v.online_variant_id: v for v in Variant.objects.filter(online_variant_id__in=online_ids)}
    by_sku = {v.sku: v for v in Variant.objects.filter(sku__in=skus)}
    found = {}
    for item in items:
        variant = by_online.get(item.get("variant_id")) or by_sku.get(item.get("sku") or "")
        if variant is not None:
            found[_key(item)] = variant
    return found


def _charged_prices(payload: dict[str, Any], wanted: list[tuple[dict[str, Any], int]]) -> list[Decimal]:
    """Each line's charged unit price: its price less its share of the order's discounts."""
    prices = [parse_money(item.get("price", "0"), "line_items[].price") for item, _ in wanted]
    discount = parse_money(payload.get("total_discounts") or "0", "total_discounts")
    gross = sum((price * quantity for price, (_, quantity) in zip(prices, wanted, strict=True)), Decimal(0))
    if discount <= 0 or gross <= 0:
        return prices
    return [cents(price - price * discount / gross) for price in prices]


def _customer_for(payload: dict[str, Any]) -> int | None:
    person = payload.get("customer") or {}
    email = payload.get("email") or person.get("email") or ""
    phone = payload.get("phone") or person.get("phone") or ""
    if not (person.get("id") or email or phone):
        return None
    name = " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p)
    result = customer_find_or_create(
        actor=ACTOR,
        name=name,
        email=email,
        phone=phone,
        online_customer_id=person.get("id"),
        source="online",
        strict=False,
    )
    return int(result.customer.pk)


def handle_refund(payload: dict[str, Any], delivery: WebhookDelivery) -> str:
    """refunds/create: restock returned units at the mapped location, cancel unfulfilled ones."""
    refund_id, order_id = require(payload, "id", "order_id")
    moment = payload.get("processed_at") or payload.get("created_at")
    if not claim_version(
        resource_type="refund", resource_id=int(refund_id), updated_at=parse_time(moment, "created_at"),
        delivery=delivery,
    ):  # fmt: skip
        return DeliveryStatus.STALE
    order = _find_order(order_id)
    if order is None:
        raise RetryLater(f"Order {order_id} is not in Omni yet: retried until its orders/create is processed.")
    lines = list(OrderLine.objects.filter(order=order).order_by("pk"))
    returns: dict[int, list[ReturnInput]] = {}
    cancels: dict[int, int] = {}
    skipped = 0
    for refund_line in payload.get("refund_line_items") or []:
        quantity = int(refund_line.get("quantity") or 0)
        sku = (refund_line.get("line_item") or {}).get("sku") or ""
        line = next((line for line in lines if line.sku == sku), None)
        restock = refund_line.get("restock_type")
        if line is None or quantity <= 0 or restock in (None, "no_restock"):
            skipped += 1
            continue
        if restock == "cancel":
            cancels[line.pk] = cancels.get(line.pk, 0) + quantity
            continue
        location = location_for_online(refund_line.get("location_id")) or line.source_location
        returns.setdefault(location.pk, []).append(ReturnInput(line_id=line.pk, quantity=quantity))
    if cancels:
        order_cancel(actor=ACTOR, order_id=order.pk, lines=cancels, reason=f"online refund {refund_id}")
    for location_id, inputs in returns.items():
        order_return(
            actor=ACTOR,
            order_id=order.pk,
            location_id=location_id,
            lines=inputs,
            idempotency_key=f"online-refund:{refund_id}:{location_id}",
            note=str(payload.get("note") or "")[:200],
        )
    return f"{order.number}: {sum(cancels.values())} cancelled, {sum(len(v) for v in returns.values())} returned" + (
        f", {skipped} refund line(s) without restock" if skipped else ""
    )


def online_orders_count() -> int:
    """Orders that came from the online store (the webhook benchmark checks effects against it)."""
    return Order.objects.filter(channel=Channel.ONLINE, external_ref__startswith="shopify:").count()


HANDLERS: dict[str, Callable[[dict[str, Any], WebhookDelivery], str]] = {
    "customers/create": handle_customer,
    "customers/update": handle_customer,
    "orders/create": handle_order,
    "orders/updated": handle_order,
    "orders/cancelled": handle_order,
    "refunds/create": handle_refund,
}
