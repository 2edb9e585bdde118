"""Shared fixtures: locations, staff in every role, API clients."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from omni.roles import Role
from tests.factories import LocationFactory, UserFactory
from tests.factories.inventory import WarehouseFactory


@pytest.fixture
def store(db):
    return LocationFactory(code="aus-1", name="Austin Downtown")


@pytest.fixture
def other_store(db):
    return LocationFactory(code="aus-2", name="Austin Domain", latitude="30.401", longitude="-97.725")


@pytest.fixture
def warehouse(db):
    return WarehouseFactory(code="wh-1", name="Central Warehouse")


@pytest.fixture
def associate(store):
    return UserFactory(username="associate", role=Role.ASSOCIATE, home_location=store)


@pytest.fixture
def manager(store):
    return UserFactory(username="manager", role=Role.MANAGER, home_location=store)


@pytest.fixture
def other_manager(other_store):
    return UserFactory(username="other-manager", role=Role.MANAGER, home_location=other_store)


@pytest.fixture
def warehouse_operator(warehouse):
    return UserFactory(username="warehouse", role=Role.WAREHOUSE, home_location=warehouse)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", role=Role.ADMIN, is_staff=True, is_superuser=True)


def _api_client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api_client_for():
    """`api_client_for(user)`: an API client authenticated with the user's token."""
    return _api_client_for


def pytest_collection_modifyitems(config, items):
    """Browser tests run last, keeping their relative order.

    The session-wide Playwright browser leaves an event loop on the main thread and lifts Django's
    async-unsafe guard until the session ends; tests collected after it (asyncio.run, async views
    through the test client) would otherwise depend on whether a browser test ran before them.
    """
    items.sort(
        key=lambda item: item.get_closest_marker("browser") is not None or item.nodeid.startswith("tests/browser/")
    )
