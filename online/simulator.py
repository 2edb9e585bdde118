"""A realistic stream of online-store webhooks, for the demo, the tests and the benchmarks.

`stream()` yields `Delivery`s in the order a real store might send them: orders created, updated
(sometimes before their create arrives), cancelled with restocks, refunded; customers created;
inventory-level echoes; and a share of exact duplicates (same webhook id, same body) shuffled in.
Payload shapes follow shared/docs/online-store-contract.md §2.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from . import hmac


@dataclass(frozen=True)
class Delivery:
    topic: str
    webhook_id: str
    body: bytes

    def headers(self, *, secret: str, shop: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": self.topic,
            "X-Shopify-Hmac-Sha256": hmac.sign(self.body, secret),
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-API-Version": "2026-04",
            "X-Shopify-Webhook-Id": self.webhook_id,
            "X-Shopify-Event-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.webhook_id)),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        }


@dataclass(frozen=True)
class CatalogueItem:
    sku: str
    variant_id: int
    inventory_item_id: int
    price: Decimal
    title: str


FIRST = ("Ana", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hugo", "Ines", "Jon", "Kai", "Lena")
LAST = ("Lopez", "Nguyen", "Smith", "Okafor", "Rossi", "Kim", "Patel", "Garcia", "Brown", "Meyer")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class OnlineStoreSimulator:
    def __init__(
        self,
        *,
        catalogue: Sequence[CatalogueItem],
        online_location_id: int,
        rng: random.Random,
        order_id_base: int = 5_832_000_000_000,
        customer_id_base: int = 7_012_000_000_000,
    ) -> None:
        if not catalogue:
            raise ValueError("The simulator needs at least one catalogue item with an online inventory item id.")
        self.catalogue = list(catalogue)
        self.location_id = online_location_id
        self.rng = rng
        self.order_id_base = order_id_base
        self.customer_id_base = customer_id_base
        self.clock = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=self.rng.randint(5, 90))
        return self.clock

    def _delivery(self, topic: str, payload: dict[str, object]) -> Delivery:
        return Delivery(topic=topic, webhook_id=str(uuid.UUID(int=self.rng.getrandbits(128))), body=_dump(payload))

    def customer(self, number: int) -> dict[str, object]:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        return {
            "id": self.customer_id_base + number,
            "email": f"{first.lower()}.{last.lower()}{self.customer_id_base + number}@example.com",
            "first_name": first,
            "last_name": last,
            "phone": f"+1512555{number % 10000:04d}" if self.rng.random() < 0.6 else None,
            "state": "enabled",
            "tags": "",
            "default_address": {
                "address1": "12 Elm St",
                "city": "Austin",
                "province_code": "TX",
                "zip": "78701",
                "country_code": "US",
            },
            "email_marketing_consent": {
                "state": "subscribed" if self.rng.random() < 0.5 else "not_subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": _iso(self.clock),
            },
            "sms_marketing_consent": None,
            "updated_at": _iso(self.clock),
        }

    def order(self, number: int, customer: dict[str, object]) -> dict[str, object]:
        created = self._tick()
        lines = []
        picked = self.rng.sample(self.catalogue, k=min(len(self.catalogue), self.rng.randint(1, 3)))
        subtotal = Decimal(0)
        for index, item in enumerate(picked):
            quantity = self.rng.randint(1, 2)
            subtotal += item.price * quantity
            lines.append({
                "id": (self.order_id_base + number) * 10 + index, "variant_id": item.variant_id,
                "product_id": None, "sku": item.sku, "title": item.title, "quantity": quantity,
                "current_quantity": quantity, "fulfillable_quantity": quantity, "price": str(item.price),
                "requires_shipping": True, "taxable": True, "gift_card": False, "fulfillment_status": None,
                "variant_inventory_management": "shopify",
            })  # fmt: skip
        return {
            "id": self.order_id_base + number,
            "admin_graphql_api_id": f"gid://shopify/Order/{self.order_id_base + number}",
            "name": f"#{1000 + number}", "order_number": 1000 + number,
            "email": customer["email"], "phone": customer["phone"],
            "created_at": _iso(created), "updated_at": _iso(created),
            "cancelled_at": None, "cancel_reason": None, "currency": "USD",
            "subtotal_price": str(subtotal), "total_tax": "0.00", "total_discounts": "0.00",
            "total_price": str(subtotal + Decimal("5.00")), "financial_status": "paid", "fulfillment_status": None,
            "source_name": "web", "location_id": None, "tags": "", "test": False, "note": None,
            "customer": {k: customer[k] for k in ("id", "email", "first_name", "last_name", "phone", "state")},
            "line_items": lines,
            "shipping_address": {"first_name": customer["first_name"], "last_name": customer["last_name"],
                                 "address1": "12 Elm St", "address2": None, "city": "Austin",
                                 "province_code": "TX", "zip": "78701", "country_code": "US", "phone": None},
            "shipping_lines": [{"id": 1, "title": "Standard", "code": "Standard", "price": "5.00"}],
            "fulfillments": [], "refunds": [],
        }  # fmt: skip

    def stream(self, *, orders: int, duplicate_share: float = 0.2) -> Iterator[Delivery]:
        """Deliveries for `orders` orders and their customers, with out-of-order updates,
        cancellations, refunds and a share of duplicates, shuffled within small windows."""
        produced: list[Delivery] = []
        for number in range(orders):
            customer = self.customer(number)
            order = self.order(number, customer)
            produced.append(self._delivery("customers/create", customer))
            events = [self._delivery("orders/create", order)]
            roll = self.rng.random()
            if roll < 0.15:
                updated = {**order, "updated_at": _iso(self._tick()), "tags": "gift"}
                events.append(self._delivery("orders/updated", updated))
                if self.rng.random() < 0.5:
                    events.reverse()  # the update overtakes the create
            elif roll < 0.25:
                moment = self._tick()
                cancelled = {**order, "updated_at": _iso(moment), "cancelled_at": _iso(moment),
                             "cancel_reason": "customer", "financial_status": "refunded"}  # fmt: skip
                events.append(self._delivery("orders/cancelled", cancelled))
            elif roll < 0.35:
                line = order["line_items"][0]  # type: ignore[index]
                refund = {
                    "id": 912_000_000_000 + number, "order_id": order["id"], "created_at": _iso(self._tick()),
                    "processed_at": _iso(self.clock), "note": "Wrong size", "restock": True,
                    "refund_line_items": [{"id": 3_358_000 + number, "line_item_id": line["id"], "quantity": 1,
                                           "restock_type": "cancel", "location_id": self.location_id,
                                           "subtotal": float(line["price"]), "total_tax": 0.0,
                                           "line_item": {"id": line["id"], "variant_id": line["variant_id"],
                                                         "sku": line["sku"], "quantity": line["quantity"]}}],
                    "transactions": [{"id": 6_912_000_000 + number, "kind": "refund", "status": "success",
                                      "amount": line["price"], "gateway": "shopify_payments"}],
                    "order_adjustments": [], "return": None,
                }  # fmt: skip
                events.append(self._delivery("refunds/create", refund))
            produced.extend(events)
        result = list(produced)
        # Duplicates are exact repeats (same webhook id and body) landing anywhere in the stream.
        for _ in range(int(len(produced) * duplicate_share)):
            result.insert(self.rng.randint(0, len(result)), self.rng.choice(produced))
        window = 8
        for start in range(0, len(result), window):
            chunk = result[start : start + window]
            self.rng.shuffle(chunk)
            result[start : start + window] = chunk
        yield from result


def _dump(payload: object) -> bytes:
    # Shopify escapes "/" as "\/": signatures must be over the exact bytes, so mimic it.
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()
