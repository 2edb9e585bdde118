"""Orders fixtures: a small network (two Austin stores that ship, a warehouse, a far store)."""

from decimal import Decimal

import pytest

from tests.factories.customers import make_customer
from tests.factories.inventory import LocationFactory, VariantFactory


@pytest.fixture
def network(store, other_store, warehouse):
    """store (Austin Downtown), other_store (Austin Domain, 16 km north), warehouse, and a far store."""
    for location in (store, other_store):
        location.ships_to_customers = True
        location.offers_pickup = True
        location.save()
    warehouse.latitude, warehouse.longitude = Decimal("30.20"), Decimal("-97.70")
    warehouse.save()
    far = LocationFactory(
        code="dal-1", name="Dallas Uptown", latitude="32.80", longitude="-96.80", ships_to_customers=True
    )
    return {"store": store, "other": other_store, "warehouse": warehouse, "far": far}


@pytest.fixture
def variant(db):
    return VariantFactory(price=Decimal("49.00"))


@pytest.fixture
def customer(db):
    return make_customer(name="Ada Lovelace", email="ada@example.com")


@pytest.fixture
def eager_celery():
    """Run Celery tasks in-process when they are sent (emails land in mail.outbox)."""
    from omni.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous
