"""`manage.py simulate_online_store`: send a realistic stream of signed webhooks to a running Omni."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.models import Variant
from online.models import OnlineLocation
from online.simulator import CatalogueItem, OnlineStoreSimulator


class Command(BaseCommand):
    help = "Send signed online-store webhooks (orders, cancellations, refunds, duplicates, out-of-order updates)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/webhooks/shopify/")
        parser.add_argument("--orders", type=int, default=20)
        parser.add_argument("--duplicates", type=float, default=0.2, help="share of exact repeats (0-1)")
        parser.add_argument("--rate", type=float, default=5.0, help="deliveries per second (0: as fast as possible)")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--secret", default=None, help="default: the newest SHOPIFY_WEBHOOK_SECRET")

    def handle(self, *args: Any, **options: Any) -> None:
        secret = options["secret"] or next(iter(settings.SHOPIFY_WEBHOOK_SECRETS), None)
        if not secret:
            raise CommandError("No webhook secret: set SHOPIFY_WEBHOOK_SECRET or pass --secret.")
        mapping = OnlineLocation.objects.order_by("pk").first()
        if mapping is None:
            raise CommandError("No online location is mapped: run `manage.py seed_demo` first.")
        catalogue = [
            CatalogueItem(sku=sku, variant_id=variant_id or 0, inventory_item_id=item_id or 0, price=Decimal(price),
                          title=title)
            for sku, variant_id, item_id, price, title in Variant.objects.filter(
                online_inventory_item_id__isnull=False, is_active=True
            ).values_list("sku", "online_variant_id", "online_inventory_item_id", "price", "product__name")[:500]
        ]  # fmt: skip
        if not catalogue:
            raise CommandError("No variant is linked to an online inventory item: run `manage.py seed_demo` first.")
        simulator = OnlineStoreSimulator(
            catalogue=catalogue,
            online_location_id=mapping.online_location_id,
            rng=random.Random(options["seed"]),
        )
        counts: dict[int, int] = {}
        pause = 1 / options["rate"] if options["rate"] > 0 else 0
        with httpx.Client(timeout=10) as client:
            for delivery in simulator.stream(orders=options["orders"], duplicate_share=options["duplicates"]):
                response = client.post(
                    options["url"],
                    content=delivery.body,
                    headers=delivery.headers(secret=secret, shop=settings.SHOPIFY_SHOP_DOMAIN),
                )
                counts[response.status_code] = counts.get(response.status_code, 0) + 1
                self.stdout.write(f"{response.status_code} {delivery.topic:<18} {delivery.webhook_id}")
                if pause:
                    time.sleep(pause)
        self.stdout.write(self.style.SUCCESS(f"sent {sum(counts.values())} deliveries: {counts}"))
