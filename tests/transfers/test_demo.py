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


def test_demo_transfers_take_days_like_real_ones():
    # They were created, approved, dispatched and received within a second: lead time 0.0 h.
    seed()

    received = Transfer.objects.get(idempotency_key="demo-transfer:1")
    assert received.created_at < received.approved_at < received.dispatched_at < received.received_at
    assert (received.received_at - received.created_at).total_seconds() > 24 * 3600
    moves = StockMovement.objects.filter(reference_type="transfer", reference_id=received.code)
    assert {m.created_at for m in moves.filter(reason="transfer_out")} == {received.dispatched_at}
    assert {m.created_at for m in moves.filter(reason="transfer_in")} == {received.received_at}
    dispatched = received.events.get(kind="dispatched")
    assert dispatched.created_at == received.dispatched_at
    assert_ledger_matches_levels()
