"""Fulfilment: pick by scanning each unit, pack, ship with tracking; collect with a code; emails."""

import pytest
from django.core import mail

from inventory.models import MovementReason, StockLevel, StockMovement
from orders import emails, services
from orders.errors import CollectionCodeError, InvalidTransitionError, PickError
from orders.models import Fulfilment, FulfilmentKind, OrderEvent, Status
from tests.factories.orders import collect, draft, give_stock, place, ship

pytestmark = pytest.mark.django_db


def level(location, variant):
    return StockLevel.objects.get(location=location, variant=variant)


@pytest.fixture
def shipped_order(network, variant, associate, customer):
    give_stock(network["warehouse"], variant, 5)
    return place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant, 2)])).order


def test_pick_each_unit_then_pack_then_ship(
    shipped_order, variant, network, warehouse_operator, django_capture_on_commit_callbacks
):
    fulfilment = Fulfilment.objects.get(order=shipped_order)

    first = services.fulfilment_pick(actor=warehouse_operator, fulfilment_id=fulfilment.pk, code=variant.barcode)
    assert not first.complete
    with pytest.raises(PickError, match="still to pick"):
        services.fulfilment_pack(actor=warehouse_operator, fulfilment_id=fulfilment.pk)
    second = services.fulfilment_pick(actor=warehouse_operator, fulfilment_id=fulfilment.pk, code=variant.sku)
    assert second.complete
    with pytest.raises(PickError, match="already picked"):
        services.fulfilment_pick(actor=warehouse_operator, fulfilment_id=fulfilment.pk, code=variant.sku)
    services.fulfilment_pack(actor=warehouse_operator, fulfilment_id=fulfilment.pk)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.fulfilment_ship(
            actor=warehouse_operator, fulfilment_id=fulfilment.pk, carrier="UPS", tracking_number="1Z999"
        )

    fulfilment.refresh_from_db()
    assert fulfilment.status == Status.SHIPPED
    shipped_order.refresh_from_db()
    assert shipped_order.status == Status.SHIPPED
    wh = level(network["warehouse"], variant)
    assert (wh.on_hand, wh.committed) == (3, 0)
    assert StockMovement.objects.filter(reason=MovementReason.FULFIL, reference_id=shipped_order.number).count() == 2
    assert any("send_shipped" in repr(callback) for callback in callbacks)
    kinds = list(OrderEvent.objects.filter(order=shipped_order).values_list("kind", flat=True))
    assert [k for k in kinds if k in ("picking", "packed", "shipped")] == ["picking", "packed", "shipped"]


def test_a_wrong_scan_is_refused(shipped_order, warehouse_operator):
    fulfilment = Fulfilment.objects.get(order=shipped_order)

    with pytest.raises(PickError, match="not on this pick list"):
        services.fulfilment_pick(actor=warehouse_operator, fulfilment_id=fulfilment.pk, code="0000000000000")


def test_cannot_ship_before_packing(shipped_order, warehouse_operator):
    fulfilment = Fulfilment.objects.get(order=shipped_order)

    with pytest.raises(InvalidTransitionError):
        services.fulfilment_ship(
            actor=warehouse_operator, fulfilment_id=fulfilment.pk, carrier="UPS", tracking_number="1"
        )


def test_shipped_email_has_the_tracking_number(shipped_order, warehouse_operator, variant):
    fulfilment = Fulfilment.objects.get(order=shipped_order)
    for _ in range(2):
        services.fulfilment_pick(actor=warehouse_operator, fulfilment_id=fulfilment.pk, code=variant.sku)
    services.fulfilment_pack(actor=warehouse_operator, fulfilment_id=fulfilment.pk)
    services.fulfilment_ship(
        actor=warehouse_operator, fulfilment_id=fulfilment.pk, carrier="FedEx", tracking_number="7777"
    )

    assert emails.send_shipped(fulfilment_id=fulfilment.pk)
    assert not emails.send_shipped(fulfilment_id=fulfilment.pk)  # once

    message = mail.outbox[-1]
    assert message.to == ["ada@example.com"]
    assert shipped_order.number in message.subject
    assert "FedEx" in message.body and "7777" in message.body


def test_confirmation_email_lists_lines_and_tax(shipped_order):
    assert emails.send_order_confirmation(order_id=shipped_order.pk)

    body = mail.outbox[-1].body
    assert shipped_order.number in body
    assert "98.00" in body and "including tax" in body
    assert "Shipping from Central Warehouse" in body


def test_placing_queues_the_confirmation_on_commit(
    network, variant, associate, customer, eager_celery, django_capture_on_commit_callbacks
):
    give_stock(network["warehouse"], variant, 1)

    with django_capture_on_commit_callbacks(execute=True):
        order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)])).order

    assert [m.subject for m in mail.outbox] == [f"Your order {order.number}"]


def test_collect_here_ready_then_collected_with_the_code(
    network, variant, associate, customer, eager_celery, django_capture_on_commit_callbacks
):
    store = network["store"]
    give_stock(store, variant, 1)
    order = place(associate, draft(location=store, customer=customer, lines=[collect(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)

    with django_capture_on_commit_callbacks(execute=True):
        services.fulfilment_mark_ready(actor=associate, fulfilment_id=fulfilment.pk)

    fulfilment.refresh_from_db()
    ready_mail = mail.outbox[-1]
    assert "ready to collect" in ready_mail.subject
    assert fulfilment.collection_code in ready_mail.body
    with pytest.raises(CollectionCodeError, match="does not match"):
        services.fulfilment_collect(actor=associate, fulfilment_id=fulfilment.pk, code="not-it")
    services.fulfilment_collect(actor=associate, fulfilment_id=fulfilment.pk, code=fulfilment.collection_code)

    fulfilment.refresh_from_db()
    order.refresh_from_db()
    assert (fulfilment.status, order.status) == (Status.COLLECTED, Status.COLLECTED)
    assert level(store, variant).on_hand == 0 and level(store, variant).committed == 0


def test_a_pickup_half_scanned_is_not_ready_until_every_unit_is_picked(network, variant, associate, customer):
    store = network["store"]
    give_stock(store, variant, 2)
    order = place(associate, draft(location=store, customer=customer, lines=[collect(variant, 2)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    services.fulfilment_pick(actor=associate, fulfilment_id=fulfilment.pk, code=variant.sku)

    with pytest.raises(PickError, match="1 unit"):
        services.fulfilment_mark_ready(actor=associate, fulfilment_id=fulfilment.pk)
    fulfilment.refresh_from_db()
    assert (fulfilment.status, fulfilment.collection_code) == (Status.PICKING, "")

    services.fulfilment_pick(actor=associate, fulfilment_id=fulfilment.pk, code=variant.sku)
    services.fulfilment_mark_ready(actor=associate, fulfilment_id=fulfilment.pk)
    fulfilment.refresh_from_db()
    assert fulfilment.status == Status.READY_FOR_PICKUP


def test_too_many_wrong_codes_lock_collection_until_a_new_code(network, variant, associate, customer):
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[collect(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    services.fulfilment_mark_ready(actor=associate, fulfilment_id=fulfilment.pk)
    for wrong in ["x", "é\u0097", *["x"] * (services.MAX_CODE_ATTEMPTS - 2)]:  # non-ASCII: a wrong code too
        with pytest.raises(CollectionCodeError):
            services.fulfilment_collect(actor=associate, fulfilment_id=fulfilment.pk, code=wrong)
    fulfilment.refresh_from_db()

    with pytest.raises(CollectionCodeError, match="Too many"):
        services.fulfilment_collect(actor=associate, fulfilment_id=fulfilment.pk, code=fulfilment.collection_code)

    services.fulfilment_resend_code(actor=associate, fulfilment_id=fulfilment.pk)
    fulfilment.refresh_from_db()
    services.fulfilment_collect(actor=associate, fulfilment_id=fulfilment.pk, code=fulfilment.collection_code)


def test_a_pickup_is_ready_as_soon_as_its_transfer_is_received(
    network, variant, associate, customer, eager_celery, django_capture_on_commit_callbacks
):
    # It waited for the beat's next minute: "Coming from ..." up to 60 s after the receipt.
    from transfers import services as transfers
    from transfers.models import Transfer

    give_stock(network["other"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[collect(variant)])).order
    transfer = Transfer.objects.get()
    transfers.transfer_dispatch(actor=services.SystemActor("test"), transfer_id=transfer.pk)

    with django_capture_on_commit_callbacks(execute=True):
        transfers.transfer_receive(actor=services.SystemActor("test"), transfer_id=transfer.pk, as_expected=True)

    assert Fulfilment.objects.get(order=order).status == Status.READY_FOR_PICKUP


def test_a_transfer_received_short_tells_the_pickup_store_once(network, variant, associate, customer, client):
    # It waited silently for ever: "Coming from ..." on the pickup list, no word to anyone.
    from transfers import services as transfers
    from transfers.models import Transfer

    store, other = network["store"], network["other"]
    give_stock(other, variant, 2)
    order = place(associate, draft(location=store, customer=customer, lines=[collect(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    transfer = Transfer.objects.get()
    transfers.transfer_dispatch(actor=services.SystemActor("test"), transfer_id=transfer.pk)
    line = transfer.lines.get()
    transfers.transfer_receive(actor=services.SystemActor("test"), transfer_id=transfer.pk, counts={line.pk: 0})

    assert services.fulfilments_sync_transfers() == 0
    services.fulfilments_sync_transfers()  # the beat runs every minute: one note, not one a minute

    notes = OrderEvent.objects.filter(order=order, kind=services.SHORT_TRANSFER_EVENT)
    assert [(n.fulfilment_id, n.data) for n in notes] == [(fulfilment.pk, {"expected": 1, "received": 0})]
    assert f"Transfer {transfer.code} arrived short: 0 of 1 received" in notes[0].message
    client.force_login(associate)
    page = client.get(f"/fulfil/{fulfilment.pk}/").content.decode()
    assert 'data-testid="transfer-short"' in page and "cancel and refund" in page
    assert "Arrived short: see the order" in client.get("/pickups/").content.decode()
    assert "Arrived short: see the order" in client.get("/fulfil/").content.decode()  # the queue's pickups


def test_collect_from_another_store_requests_a_transfer_and_is_ready_when_it_arrives(
    network, variant, associate, customer, other_manager
):
    from transfers import services as transfers
    from transfers.models import Transfer

    store, other = network["store"], network["other"]
    give_stock(other, variant, 2)
    order = place(associate, draft(location=store, customer=customer, lines=[collect(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    assert (fulfilment.kind, fulfilment.source_location_id, fulfilment.pickup_location_id) == (
        FulfilmentKind.COLLECT,
        other.pk,
        store.pk,
    )
    assert level(other, variant).committed == 1
    transfer = Transfer.objects.get()
    assert fulfilment.transfer_ref == transfer.code
    with pytest.raises(PickError, match="on its way"):
        services.fulfilment_mark_ready(actor=associate, fulfilment_id=fulfilment.pk)

    transfers.transfer_dispatch(actor=services.SystemActor("test"), transfer_id=transfer.pk)
    transfers.transfer_receive(actor=services.SystemActor("test"), transfer_id=transfer.pk, as_expected=True)
    assert services.fulfilments_sync_transfers() == 1

    fulfilment.refresh_from_db()
    assert (fulfilment.status, fulfilment.stock_location_id) == (Status.READY_FOR_PICKUP, store.pk)
    assert level(store, variant).committed == 1
    services.fulfilment_collect(actor=associate, fulfilment_id=fulfilment.pk, code=fulfilment.collection_code)
    assert level(store, variant).on_hand == 0
