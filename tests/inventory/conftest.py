"""Helpers for inventory tests: put stock in through the services, as production does."""

import pytest

from inventory import services
from inventory.models import StockLevel

SYSTEM = services.SystemActor("test")


def receive(location, variant, quantity):
    """Receive `quantity` units (through the service) and return the fresh level."""
    services.stock_receive(actor=SYSTEM, location_id=location.pk, variant_id=variant.pk, quantity=quantity)
    return StockLevel.objects.get(location=location, variant=variant)


@pytest.fixture
def stock():
    """`stock(location, variant, quantity)`: receive units through the service; returns the level."""
    return receive
