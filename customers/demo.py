"""Demo customers: people who shop in the stores and online, so the till, the customer page,
the review list and the insights have someone to show.

Every customer goes through customers.services (normalised, audited, consent as dated events).
About one in twenty arrives a second time with the same phone and another email, as happens at a
real till; matching sends those to the managers' review list instead of merging them. Idempotent:
once any demo customer exists (by email, or by an email a merge kept) a run creates none, so a
customer merged or erased in the meantime does not come back (`make run` seeds on every start).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.utils import timezone

from inventory.models import Location
from omni.actors import SystemActor

from .models import Customer, CustomerIdentity, IdentityKind
from .services import customer_create, customer_find_or_create

FIRST = (
    "Maria", "James", "Sofia", "Daniel", "Ava", "Luis", "Emma", "Noah", "Isabella", "Ethan", "Camila", "Liam",
    "Mia", "Diego", "Harper", "Mason", "Valeria", "Elijah", "Chloe", "Mateo", "Grace", "Jordan", "Priya", "Kevin",
    "Aaliyah", "Tyler", "Lucia", "Marcus", "Hannah", "Andre", "Nina", "Caleb", "Zoe", "Omar", "Ruby", "Felix",
)  # fmt: skip
LAST = (
    "Garcia", "Johnson", "Martinez", "Nguyen", "Smith", "Hernandez", "Williams", "Lopez", "Brown", "Patel",
    "Davis", "Gonzalez", "Miller", "Rodriguez", "Wilson", "Kim", "Anderson", "Ramirez", "Thomas", "Flores",
    "Jackson", "Rivera", "White", "Torres", "Harris", "Cruz", "Clark", "Morales", "Lewis", "Ortiz",
)  # fmt: skip
BRANDS = ("Northwind", "Lumen", "Atelier Row", "Cedar & Pine", "Brava", "Kite")
CATEGORIES = ("tops", "bottoms", "dresses", "outerwear", "shoes", "accessories")
SIZES = ("XS", "S", "M", "L", "XL")
DOMAIN = "demo.omni.example"


def _count(options: Mapping[str, Any]) -> int:
    stores = int(options.get("stores") or 8)
    return max(60, min(2000, stores * 50))


def seed(options: Mapping[str, Any], rng: random.Random, stdout: Any) -> None:
    """`stores x 50` customers (60 to 2,000), with profiles, consents, cards and a few duplicates."""
    say = stdout.write if options.get("verbosity", 1) else (lambda message: None)
    wanted = _count(options)
    existing = Customer.objects.filter(email__endswith=f"@{DOMAIN}").count()
    if existing or CustomerIdentity.objects.filter(kind=IdentityKind.EMAIL, value__endswith=DOMAIN).exists():
        say(f"  customers: already seeded ({existing} with a demo email)")
        return
    stores = list(Location.objects.stores().active().order_by("code").values_list("pk", flat=True))
    actor = SystemActor("demo")
    created = reviews = 0
    today = timezone.localdate()
    for number in range(wanted):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}.{number}@{DOMAIN}"
        phone = f"+1512{rng.randint(2000000, 9999999)}"
        # Draw every value before the idempotency check, so a re-run follows the same stream.
        store_id = rng.choice(stores) if stores else None
        details: dict[str, Any] = {
            "birthday": today - timedelta(days=rng.randint(18 * 365, 70 * 365)),
            "size_tops": rng.choice(SIZES),
            "size_bottoms": rng.choice(SIZES),
            "size_shoes": str(rng.randint(36, 45)),
            "interest_brands": rng.sample(BRANDS, k=rng.randint(1, 3)),
            "interest_categories": rng.sample(CATEGORIES, k=rng.randint(1, 3)),
            "preferred_store_id": store_id,
        }
        email_consent, sms_consent = rng.random() < 0.55, rng.random() < 0.3
        card = f"OMNI{number:08d}" if rng.random() < 0.6 else ""
        duplicate = rng.random() < 0.05
        customer = customer_create(
            actor=actor,
            name=f"{first} {last}",
            email=email,
            phone=phone,
            details=details,
            email_consent=email_consent,
            sms_consent=sms_consent,
            loyalty_card=card,
            source="store",
            location_id=store_id,
        )
        created += 1
        if duplicate:
            # The same person typed at another till with a different email: a review, not a merge.
            result = customer_find_or_create(
                actor=actor,
                name=f"{first} {last}",
                email=f"{first.lower()}{number}@mail.{DOMAIN}",
                phone=customer.phone,
                source="store",
            )
            reviews += len(result.review_ids)
    say(f"  customers: {created} created, {reviews} possible duplicates to review")
