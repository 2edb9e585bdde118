"""Demo data for the online store: the web shop sells the warehouse's stock.

Maps the warehouse to the demo shop's online location and gives every variant an online
inventory item id (deterministic: derived from the variant's pk), so `manage.py
simulate_online_store` and the inventory push have something to speak about. Idempotent.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from django.db.models import F

from inventory.demo import WAREHOUSE_CODE
from inventory.models import Location, Variant

from .models import OnlineLocation

DEMO_ONLINE_LOCATION_ID = 61234567890
ITEM_ID_BASE = 46_000_000_000_000
VARIANT_ID_BASE = 44_000_000_000_000


def seed(options: Mapping[str, Any], rng: random.Random, stdout: Any) -> None:
    warehouse = Location.objects.filter(code=WAREHOUSE_CODE).first()
    if warehouse is None:
        return
    _, created = OnlineLocation.objects.get_or_create(
        location=warehouse, defaults={"online_location_id": DEMO_ONLINE_LOCATION_ID, "name": "Online store"}
    )
    linked = Variant.objects.filter(online_inventory_item_id__isnull=True).update(
        online_inventory_item_id=F("pk") + ITEM_ID_BASE, online_variant_id=F("pk") + VARIANT_ID_BASE
    )
    if options.get("verbosity", 1):
        stdout.write(
            f"  online: warehouse {'mapped' if created else 'already mapped'} to online location "
            f"{DEMO_ONLINE_LOCATION_ID}; {linked} variants linked to online inventory items"
        )
