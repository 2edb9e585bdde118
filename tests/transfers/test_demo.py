"""transfers/demo.py: policies and demo transfers in every state, idempotent, through the services."""

import pytest
from django.core.management import call_command

from inventory.models import StockMovement
from omni.models import LiveEvent
from tests.factories.transfers import assert_ledger_matches_levels
from transfers.models import PolicyOverride, ReplenishmentPolicy, Transfer, TransferEvent, TransferLine

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def seed():
    call_command("seed_demo", stores=3, variants=300, days=2, only="inventory,staff,transfers", verbosity=0)


def test_demo_seeds_policies_and_transfers_in_every_state_once():
    seed()

    assert ReplenishmentPolicy.objects.count() == 3
    assert PolicyOverride.objects.filter(category="accessories").count() == 3
    statuses = dict(Transfer.objects.values_list("idempotency_key", "status"))
    assert statuses["demo-transfer:1"] == "received"
    assert statuses["demo-transfer:2"] == "discrepancy"
    assert statuses["demo-transfer:3"] == "in_transit"
    assert statuses["demo-transfer:4"] == "approved"
    assert statuses["demo-transfer:6"] == "proposed"
    assert_ledger_matches_levels()
    tables = (Transfer, TransferLine, TransferEvent, StockMovement, LiveEvent, PolicyOverride)
    counts = [table.objects.count() for table in tables]

    seed()

    assert [table.objects.count() for table in tables] == counts
    assert ReplenishmentPolicy.objects.count() == 3
