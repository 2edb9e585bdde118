"""Factories and helpers for transfers: policies, stock put in through inventory's services, sales."""

from decimal import Decimal

import factory
from django.db.models import Sum

from inventory import services as stock
from inventory.models import StockLevel, StockMovement
from inventory.services import SystemActor
from tests.factories.inventory import LocationFactory
from transfers.models import PlannerSettings, PolicyOverride, ReplenishmentPolicy

SYSTEM = SystemActor("test")


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReplenishmentPolicy
        django_get_or_create = ("location",)

    location = factory.SubFactory(LocationFactory)  # one policy per location
    target_days_of_cover = Decimal("14")
    min_display_quantity = 0
    auto_approve_max_units = 500
    auto_approve_max_value = Decimal("100000")


class PolicyOverrideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PolicyOverride

    policy = factory.SubFactory(PolicyFactory)


def planner_settings(**values) -> PlannerSettings:
    row = PlannerSettings.objects.order_by("pk").first() or PlannerSettings()
    for name, value in values.items():
        setattr(row, name, value)
    row.save()
    return row


def put_stock(location, variant, quantity: int) -> None:
    """Receive units at a location (a delivery), through the stock engine."""
    stock.stock_receive(actor=SYSTEM, location_id=location.pk, variant_id=variant.pk, quantity=quantity)


def sell(location, variant, quantity: int) -> None:
    """A take-now sale of units already on hand (the ledger's `sale` movement feeds velocity)."""
    stock.stock_sell_now(actor=SYSTEM, location_id=location.pk, variant_id=variant.pk, quantity=quantity)


def stock_history(location, variant, *, on_hand: int, sold: int) -> None:
    """A level that sold `sold` units recently and now holds `on_hand`."""
    put_stock(location, variant, on_hand + sold)
    if sold:
        sell(location, variant, sold)


def level(location, variant) -> StockLevel:
    return StockLevel.objects.get(location=location, variant=variant)


def assert_ledger_matches_levels() -> None:
    """Every state of every level equals the sum of its ledger movements."""
    sums = {
        (row["location_id"], row["variant_id"], row["state"]): row["total"]
        for row in StockMovement.objects.values("location_id", "variant_id", "state")
        .annotate(total=Sum("quantity"))
        .order_by()
    }
    for row in StockLevel.objects.all():
        for state in ("on_hand", "committed", "reserved", "safety_stock", "unavailable", "incoming"):
            assert getattr(row, state) == sums.get((row.location_id, row.variant_id, state), 0), (
                f"{state} of {row.variant_id}@{row.location_id}: level {getattr(row, state)}, "
                f"ledger {sums.get((row.location_id, row.variant_id, state), 0)}"
            )
