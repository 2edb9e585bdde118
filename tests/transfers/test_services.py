"""The transfer state machine: each transition's stock effect, with the ledger always equal to the levels."""

import pytest

from inventory.errors import InsufficientStockError
from inventory.models import MovementReason, StockMovement
from inventory.services import stock_commit
from tests.factories import VariantFactory
from tests.factories.transfers import SYSTEM, assert_ledger_matches_levels, level, put_stock
from transfers import selectors, services
from transfers.errors import InvalidTransferError, ScanError, TransferStateError
from transfers.models import TransferEvent, TransferSource, TransferStatus

pytestmark = pytest.mark.django_db


def make_transfer(origin, destination, *lines, actor=SYSTEM):
    return services.transfer_create(
        actor=actor,
        origin_id=origin.pk,
        destination_id=destination.pk,
        lines=[(variant.pk, quantity) for variant, quantity in lines],
        reason="test",
    )


def states(location, variant):
    row = level(location, variant)
    return {
        "on_hand": row.on_hand,
        "committed": row.committed,
        "reserved": row.reserved,
        "incoming": row.incoming,
        "available": row.available,
    }


def test_create_is_proposed_and_holds_nothing(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)

    transfer = make_transfer(warehouse, store, (variant, 4))

    assert transfer.status == TransferStatus.PROPOSED
    assert transfer.source == TransferSource.MANUAL
    assert states(warehouse, variant)["reserved"] == 0
    assert [e.kind for e in transfer.events.all()] == ["created"]


def test_create_rejects_bad_lines_and_same_location(warehouse, store):
    variant = VariantFactory()
    with pytest.raises(InvalidTransferError):
        make_transfer(warehouse, warehouse, (variant, 1))
    with pytest.raises(InvalidTransferError):
        make_transfer(warehouse, store, (variant, 0))
    with pytest.raises(InvalidTransferError):
        services.transfer_create(actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[])
    with pytest.raises(InvalidTransferError):
        services.transfer_create(actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(999999, 1)])


def test_approve_reserves_at_origin(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    transfer = make_transfer(warehouse, store, (variant, 4))

    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)

    assert states(warehouse, variant) | {} == {
        "on_hand": 10,
        "committed": 0,
        "reserved": 4,
        "incoming": 0,
        "available": 6,
    }
    movement = StockMovement.objects.get(reference_type="transfer", reference_id=transfer.code)
    assert (movement.reason, movement.state, movement.quantity) == (MovementReason.RESERVATION, "reserved", 4)
    assert_ledger_matches_levels()


def test_approve_twice_holds_once(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    transfer = make_transfer(warehouse, store, (variant, 4))

    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)

    assert states(warehouse, variant)["reserved"] == 4
    assert TransferEvent.objects.filter(transfer=transfer, kind="approved").count() == 1


def test_approve_without_enough_stock_fails_and_writes_nothing(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 3)
    transfer = make_transfer(warehouse, store, (variant, 4))

    with pytest.raises(InsufficientStockError):
        services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)

    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.PROPOSED
    assert states(warehouse, variant)["reserved"] == 0
    assert StockMovement.objects.filter(reference_type="transfer").count() == 0


def test_auto_approve_without_stock_leaves_it_for_a_manager(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 3)
    transfer = make_transfer(warehouse, store, (variant, 4))

    result = services.transfer_auto_approve(transfer_id=transfer.pk)

    assert result.status == TransferStatus.PROPOSED
    assert result.needs_approval_reason.startswith("Automatic approval failed")
    assert selectors.transfer_exceptions(location_ids=None) == [result]


def test_full_journey_moves_stock_through_every_state(warehouse, store, warehouse_operator, associate):
    shirt, socks = VariantFactory(), VariantFactory()
    put_stock(warehouse, shirt, 10)
    put_stock(warehouse, socks, 5)
    transfer = make_transfer(warehouse, store, (shirt, 3), (socks, 2))
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)

    for _ in range(3):
        services.transfer_pick_scan(actor=warehouse_operator, transfer_id=transfer.pk, code=shirt.barcode)
    services.transfer_pick_scan(actor=warehouse_operator, transfer_id=transfer.pk, code=socks.sku, quantity=2)
    services.transfer_dispatch(actor=warehouse_operator, transfer_id=transfer.pk)

    assert states(warehouse, shirt) == {"on_hand": 7, "committed": 0, "reserved": 0, "incoming": 0, "available": 7}
    assert states(store, shirt)["incoming"] == 3
    assert states(store, shirt)["on_hand"] == 0
    assert_ledger_matches_levels()

    for _ in range(3):
        services.transfer_receive_scan(actor=associate, transfer_id=transfer.pk, code=shirt.barcode)
    services.transfer_receive_scan(actor=associate, transfer_id=transfer.pk, code=socks.barcode, quantity=2)
    received = services.transfer_receive(actor=associate, transfer_id=transfer.pk)

    assert received.status == TransferStatus.RECEIVED
    assert not received.has_discrepancy
    assert states(store, shirt) == {"on_hand": 3, "committed": 0, "reserved": 0, "incoming": 0, "available": 3}
    assert states(store, socks)["on_hand"] == 2
    assert_ledger_matches_levels()
    kinds = list(received.events.values_list("kind", flat=True))
    assert kinds == ["created", "approved", "picking", "dispatched", "received"]
    labels = set(received.events.values_list("actor_label", flat=True))
    assert {"warehouse", "associate", "system:test"} <= labels
    reasons = set(
        StockMovement.objects.filter(reference_id=transfer.code).values_list("location__code", "state", "reason")
    )
    assert ("wh-1", "on_hand", "transfer_out") in reasons
    assert ("aus-1", "incoming", "incoming") in reasons
    assert ("aus-1", "on_hand", "transfer_in") in reasons


def test_short_receipt_records_shortage_and_flags_a_manager(warehouse, store, associate):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    transfer = make_transfer(warehouse, store, (variant, 5))
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)
    services.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)
    line = transfer.lines.get()

    result = services.transfer_receive(actor=associate, transfer_id=transfer.pk, counts={line.pk: 3})

    assert result.status == TransferStatus.DISCREPANCY
    assert result.has_discrepancy
    assert states(store, variant) == {"on_hand": 3, "committed": 0, "reserved": 0, "incoming": 0, "available": 3}
    shortage = StockMovement.objects.get(reference_id=transfer.code, reason_code="shortage")
    assert (shortage.state, shortage.quantity, shortage.reason) == ("on_hand", -2, "transfer_in")
    assert_ledger_matches_levels()
    assert selectors.transfer_exceptions(location_ids={store.pk}) == [result]

    services.transfer_acknowledge_discrepancy(actor=associate, transfer_id=transfer.pk, note="box damaged")

    assert selectors.transfer_exceptions(location_ids={store.pk}) == []


def test_overage_and_unexpected_item_are_counted_and_booked(warehouse, store, associate):
    expected, stray = VariantFactory(), VariantFactory()
    put_stock(warehouse, expected, 10)
    transfer = make_transfer(warehouse, store, (expected, 2))
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)
    services.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)

    services.transfer_receive_scan(actor=associate, transfer_id=transfer.pk, code=expected.barcode, quantity=3)
    scan = services.transfer_receive_scan(actor=associate, transfer_id=transfer.pk, code=stray.barcode)
    result = services.transfer_receive(actor=associate, transfer_id=transfer.pk)

    assert "not on this transfer" in scan.message
    assert result.status == TransferStatus.DISCREPANCY
    assert states(store, expected)["on_hand"] == 3
    assert states(store, stray)["on_hand"] == 1
    overages = StockMovement.objects.filter(reference_id=transfer.code, reason_code="overage")
    assert sorted(overages.values_list("quantity", flat=True)) == [1, 1]
    assert_ledger_matches_levels()


def test_short_pick_ships_what_was_picked_and_releases_the_rest(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    transfer = make_transfer(warehouse, store, (variant, 5))
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)
    services.transfer_pick_scan(actor=SYSTEM, transfer_id=transfer.pk, code=variant.sku, quantity=2)

    services.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)

    assert states(warehouse, variant) == {"on_hand": 8, "committed": 0, "reserved": 0, "incoming": 0, "available": 8}
    assert states(store, variant)["incoming"] == 2
    assert transfer.lines.get().quantity_dispatched == 2
    assert_ledger_matches_levels()


def test_pick_scan_errors(warehouse, store):
    variant, other = VariantFactory(), VariantFactory()
    put_stock(warehouse, variant, 10)
    transfer = make_transfer(warehouse, store, (variant, 1))

    with pytest.raises(TransferStateError):  # not approved yet
        services.transfer_pick_scan(actor=SYSTEM, transfer_id=transfer.pk, code=variant.sku)
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)
    with pytest.raises(ScanError) as unknown:
        services.transfer_pick_scan(actor=SYSTEM, transfer_id=transfer.pk, code="nope")
    with pytest.raises(ScanError) as not_on:
        services.transfer_pick_scan(actor=SYSTEM, transfer_id=transfer.pk, code=other.sku)
    services.transfer_pick_scan(actor=SYSTEM, transfer_id=transfer.pk, code=variant.sku)
    with pytest.raises(ScanError) as over:
        services.transfer_pick_scan(actor=SYSTEM, transfer_id=transfer.pk, code=variant.sku)

    assert (unknown.value.code, not_on.value.code, over.value.code) == (
        "unknown_variant",
        "not_on_transfer",
        "over_pick",
    )
    assert transfer.lines.get().quantity_picked == 1


def test_cancel_after_approval_gives_the_hold_back(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    transfer = make_transfer(warehouse, store, (variant, 4))
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)

    services.transfer_cancel(actor=SYSTEM, transfer_id=transfer.pk)

    assert states(warehouse, variant)["available"] == 10
    assert_ledger_matches_levels()
    with pytest.raises(TransferStateError):
        services.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)


def test_dispatched_transfer_cannot_be_cancelled_or_dispatched_again(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    transfer = make_transfer(warehouse, store, (variant, 4))
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)
    services.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)

    with pytest.raises(TransferStateError):
        services.transfer_cancel(actor=SYSTEM, transfer_id=transfer.pk)
    with pytest.raises(TransferStateError):
        services.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)
    assert states(warehouse, variant)["on_hand"] == 6
    assert_ledger_matches_levels()


def test_reject_cancels_a_proposal(warehouse, store, manager):
    variant = VariantFactory()
    transfer = make_transfer(warehouse, store, (variant, 4))

    result = services.transfer_reject(actor=manager, transfer_id=transfer.pk, note="not now")

    assert result.status == TransferStatus.CANCELLED
    assert result.events.last().message == "not now"


# --- Demand: collect in store from another location ---------------------------------------------------


def committed_for_order(location, variant, quantity, order="SO-1"):
    stock_commit(
        actor=SYSTEM,
        location_id=location.pk,
        variant_id=variant.pk,
        quantity=quantity,
        reference=services.Reference("order", order),
    )


def test_demand_transfer_is_approved_at_once_and_moves_committed_units(other_store, store, associate):
    variant = VariantFactory()
    put_stock(other_store, variant, 5)
    committed_for_order(other_store, variant, 2)

    transfer = services.transfer_request_for_order(
        actor=associate,
        origin_id=other_store.pk,
        destination_id=store.pk,
        lines=[(variant.pk, 2)],
        reference=services.Reference("order", "SO-1"),
        idempotency_key="order:SO-1:transfer",
    )

    assert transfer.status == TransferStatus.APPROVED
    assert transfer.source == TransferSource.DEMAND
    assert states(other_store, variant)["reserved"] == 0  # already committed by the order

    services.transfer_dispatch(actor=associate, transfer_id=transfer.pk)
    assert states(other_store, variant) == {"on_hand": 3, "committed": 0, "reserved": 0, "incoming": 0, "available": 3}
    assert states(store, variant)["incoming"] == 2
    follow = selectors.transfer_lines_for_reference(reference_type="order", reference_id="SO-1")
    assert [(line.status, line.quantity_dispatched) for line in follow] == [("in_transit", 2)]

    services.transfer_receive(actor=associate, transfer_id=transfer.pk, as_expected=True)

    # At the pickup store the units are on hand and still promised to the order.
    assert states(store, variant) == {"on_hand": 2, "committed": 2, "reserved": 0, "incoming": 0, "available": 0}
    assert_ledger_matches_levels()
    follow = selectors.transfer_lines_for_reference(reference_type="order", reference_id="SO-1")
    assert follow[0].arrived and follow[0].quantity_received == 2
    assert selectors.transfer_for_reference(reference_type="order", reference_id="SO-1") == transfer


def test_demand_request_is_idempotent_and_joins_the_open_transfer(other_store, store, associate):
    first, second = VariantFactory(), VariantFactory()
    put_stock(other_store, first, 5)
    put_stock(other_store, second, 5)
    committed_for_order(other_store, first, 1, "SO-1")
    committed_for_order(other_store, second, 1, "SO-2")

    def request(variant, order):
        return services.transfer_request_for_order(
            actor=associate,
            origin_id=other_store.pk,
            destination_id=store.pk,
            lines=[(variant.pk, 1)],
            reference=services.Reference("order", order),
            idempotency_key=f"order:{order}",
        )

    one = request(first, "SO-1")
    again = request(first, "SO-1")
    joined = request(second, "SO-2")

    assert one == again == joined
    assert joined.lines.count() == 2
    assert list(joined.events.values_list("kind", flat=True)) == ["created", "approved", "lines_added"]


def test_demand_does_not_join_a_dispatched_transfer(other_store, store, associate):
    first, second = VariantFactory(), VariantFactory()
    put_stock(other_store, first, 5)
    put_stock(other_store, second, 5)
    committed_for_order(other_store, first, 1, "SO-1")
    committed_for_order(other_store, second, 1, "SO-2")
    one = services.transfer_request_for_order(
        actor=associate,
        origin_id=other_store.pk,
        destination_id=store.pk,
        lines=[(first.pk, 1)],
        reference=services.Reference("order", "SO-1"),
        idempotency_key="k1",
    )
    services.transfer_dispatch(actor=associate, transfer_id=one.pk)

    two = services.transfer_request_for_order(
        actor=associate,
        origin_id=other_store.pk,
        destination_id=store.pk,
        lines=[(second.pk, 1)],
        reference=services.Reference("order", "SO-2"),
        idempotency_key="k2",
    )

    assert two != one
    assert two.status == TransferStatus.APPROVED


def test_demand_short_receipt_commits_only_what_arrived(other_store, store, associate):
    variant = VariantFactory()
    put_stock(other_store, variant, 5)
    committed_for_order(other_store, variant, 3)
    transfer = services.transfer_request_for_order(
        actor=associate,
        origin_id=other_store.pk,
        destination_id=store.pk,
        lines=[(variant.pk, 3)],
        reference=services.Reference("order", "SO-1"),
        idempotency_key="k",
    )
    services.transfer_dispatch(actor=associate, transfer_id=transfer.pk)
    line = transfer.lines.get()

    services.transfer_receive(actor=associate, transfer_id=transfer.pk, counts={line.pk: 2})

    assert states(store, variant) == {"on_hand": 2, "committed": 2, "reserved": 0, "incoming": 0, "available": 0}
    assert_ledger_matches_levels()


def test_a_cancelled_order_takes_its_lines_off_the_open_transfer(other_store, store, associate):
    mine, theirs = VariantFactory(), VariantFactory()
    put_stock(other_store, mine, 5)
    put_stock(other_store, theirs, 5)
    committed_for_order(other_store, mine, 2, "SO-1")
    committed_for_order(other_store, theirs, 1, "SO-2")
    for variant, order, quantity in ((mine, "SO-1", 2), (theirs, "SO-2", 1)):
        transfer = services.transfer_request_for_order(
            actor=associate,
            origin_id=other_store.pk,
            destination_id=store.pk,
            lines=[(variant.pk, quantity)],
            reference=services.Reference("order", order),
            idempotency_key=f"k-{order}",
        )

    removed = services.transfer_release_order_lines(actor=associate, reference=services.Reference("order", "SO-1"))
    again = services.transfer_release_order_lines(actor=associate, reference=services.Reference("order", "SO-1"))

    assert (removed, again) == (2, 0)
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.APPROVED
    assert list(transfer.lines.values_list("reference_id", flat=True)) == ["SO-2"]
    assert selectors.transfer_lines_for_reference(reference_type="order", reference_id="SO-1") == []

    services.transfer_release_order_lines(actor=associate, reference=services.Reference("order", "SO-2"))

    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.CANCELLED
    assert states(other_store, mine)["committed"] == 2  # the order uncommits its own units
    assert_ledger_matches_levels()
