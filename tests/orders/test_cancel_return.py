"""Cancellation releases commitments and refunds; returns at any store restock there and refund
against the original tenders; exchanges create the replacement line."""

from decimal import Decimal

import pytest

from inventory.models import MovementReason, StockLevel, StockMovement
from orders import services
from orders.errors import CancelNotAllowedError, GiftCardError, ReturnNotAllowedError
from orders.models import Fulfilment, GiftCard, Order, Payment, Refund, Status, Tender
from orders.services import ReturnInput, TenderInput
from tests.factories.inventory import VariantFactory
from tests.factories.orders import SYSTEM, card, cash, collect, draft, give_stock, place, ship, take_now
from tests.factories.transfers import assert_ledger_matches_levels
from transfers.models import Transfer, TransferStatus

pytestmark = pytest.mark.django_db
D = Decimal


def level(location, variant):
    return StockLevel.objects.get(location=location, variant=variant)


def test_cancel_a_ship_line_releases_the_commitment_and_refunds_the_card(network, variant, associate, customer):
    give_stock(network["warehouse"], variant, 3)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant, 2)])).order
    line = order.lines.get()

    services.order_cancel(actor=associate, order_id=order.pk, lines={line.pk: 1}, reason="changed mind")

    assert level(network["warehouse"], variant).committed == 1
    order.refresh_from_db()
    assert order.refunded_total == D("49.00")
    assert order.status == Status.ALLOCATED
    refund = Refund.objects.get()
    assert (refund.payment.tender, refund.amount, refund.reason) == (Tender.CARD, D("49.00"), "cancel")

    services.order_cancel(actor=associate, order_id=order.pk)

    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert level(network["warehouse"], variant).committed == 0
    assert order.refunded_total == order.paid_total == D("98.00")


def test_take_now_lines_are_returned_not_cancelled(network, variant, associate):
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], lines=[take_now(variant)])).order

    with pytest.raises(CancelNotAllowedError):
        services.order_cancel(actor=associate, order_id=order.pk)


def test_shipped_lines_cannot_be_cancelled(network, variant, associate, customer, warehouse_operator):
    give_stock(network["warehouse"], variant, 1)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)])).order
    fulfilment = Fulfilment.objects.get(order=order)
    services.fulfilment_pick(actor=warehouse_operator, fulfilment_id=fulfilment.pk, code=variant.sku)
    services.fulfilment_pack(actor=warehouse_operator, fulfilment_id=fulfilment.pk)
    services.fulfilment_ship(actor=warehouse_operator, fulfilment_id=fulfilment.pk, carrier="UPS", tracking_number="1")

    with pytest.raises(CancelNotAllowedError):
        services.order_cancel(actor=associate, order_id=order.pk)


def _collect_from_other_store(network, variant, associate, customer, units):
    give_stock(network["other"], variant, 3)
    order = place(associate, draft(location=network["store"], customer=customer, lines=[collect(variant, units)])).order
    return order, Transfer.objects.get()


def test_cancelling_a_collection_before_its_transfer_leaves_takes_it_off_the_transfer(
    network, variant, associate, customer
):
    order, transfer = _collect_from_other_store(network, variant, associate, customer, 2)
    assert level(network["other"], variant).committed == 2

    services.order_cancel(actor=associate, order_id=order.pk, reason="found it elsewhere")

    order.refresh_from_db()
    transfer.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert order.refunded_total == order.paid_total
    assert transfer.status == TransferStatus.CANCELLED
    assert not transfer.lines.exists()
    other = level(network["other"], variant)
    assert (other.on_hand, other.committed, other.reserved, other.available) == (3, 0, 0, 3)
    assert not StockLevel.objects.filter(location=network["store"], variant=variant, incoming__gt=0).exists()
    assert_ledger_matches_levels()


def test_part_of_a_collection_on_an_open_transfer_comes_off_it_and_the_rest_later(
    network, variant, associate, customer
):
    order, transfer = _collect_from_other_store(network, variant, associate, customer, 2)
    line = order.lines.get()

    services.order_cancel(actor=associate, order_id=order.pk, lines={line.pk: 1}, reason="only needs one")

    line.refresh_from_db()
    transfer.refresh_from_db()
    assert line.cancelled_quantity == 1
    assert transfer.status == TransferStatus.APPROVED
    assert transfer.lines.get().quantity == 1
    other = level(network["other"], variant)
    assert (other.on_hand, other.committed, other.available) == (3, 1, 2)
    assert Refund.objects.get().amount == D("49.00")
    assert_ledger_matches_levels()

    services.order_cancel(actor=associate, order_id=order.pk)

    order.refresh_from_db()
    transfer.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert transfer.status == TransferStatus.CANCELLED
    assert not transfer.lines.exists()
    assert level(network["other"], variant).committed == 0
    assert order.refunded_total == order.paid_total
    assert_ledger_matches_levels()


def test_cancelling_part_of_a_collection_being_picked_puts_the_extra_picked_unit_back(
    network, variant, associate, customer
):
    from transfers import services as transfers

    order, transfer = _collect_from_other_store(network, variant, associate, customer, 2)
    transfer_line = transfer.lines.get()
    transfers.transfer_pick_scan(actor=SYSTEM, transfer_id=transfer.pk, code=variant.sku, quantity=2)

    services.order_cancel(actor=associate, order_id=order.pk, lines={order.lines.get().pk: 1})

    transfer_line.refresh_from_db()
    assert (transfer_line.quantity, transfer_line.quantity_picked) == (1, 1)
    transfers.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.lines.get().quantity_dispatched == 1
    assert level(network["store"], variant).incoming == 1
    assert_ledger_matches_levels()


def test_a_collection_whose_transfer_left_is_cancelled_only_once_it_arrives(network, variant, associate, customer):
    from transfers import services as transfers

    order, transfer = _collect_from_other_store(network, variant, associate, customer, 1)
    transfers.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)

    with pytest.raises(CancelNotAllowedError, match="once it has arrived"):
        services.order_cancel(actor=associate, order_id=order.pk)

    transfers.transfer_receive(actor=SYSTEM, transfer_id=transfer.pk, as_expected=True)
    services.fulfilments_sync_transfers()
    services.order_cancel(actor=associate, order_id=order.pk)

    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    store = level(network["store"], variant)
    assert (store.on_hand, store.committed, store.available) == (1, 0, 1)
    assert_ledger_matches_levels()


def test_return_at_another_store_restocks_there_and_refunds_original_tenders(
    network, variant, associate, other_manager
):
    give_stock(network["store"], variant, 2)
    order = place(
        associate,
        draft(location=network["store"], lines=[take_now(variant, 2)], tenders=[card("60.00"), cash("38.00")]),
    ).order
    line = order.lines.get()

    returned = services.order_return(
        actor=other_manager,
        order_id=order.pk,
        location_id=network["other"].pk,
        lines=[ReturnInput(line.pk, 1), ReturnInput(line.pk, 1, damaged=True)],
        idempotency_key="ret-1",
    )

    other = level(network["other"], variant)
    assert (other.on_hand, other.unavailable, other.available) == (2, 1, 1)
    assert level(network["store"], variant).on_hand == 0
    assert returned.refund_total == D("98.00")
    refunds = sorted(Refund.objects.values_list("payment__tender", "amount"))
    assert refunds == [("card", D("60.00")), ("cash", D("38.00"))]
    order.refresh_from_db()
    assert order.status == Status.RETURNED
    assert StockMovement.objects.filter(reason=MovementReason.RETURN, location=network["other"]).exists()
    # The timeline names the part (an order of several parts read "Everything returned." for one).
    assert order.events.filter(message="Taken at Austin Downtown: everything returned.").exists()
    # The same key again is the same return.
    again = services.order_return(
        actor=other_manager,
        order_id=order.pk,
        location_id=network["other"].pk,
        lines=[ReturnInput(line.pk, 1)],
        idempotency_key="ret-1",
    )
    assert again.pk == returned.pk and Refund.objects.count() == 2


def test_cannot_return_more_than_was_bought(network, variant, associate):
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], lines=[take_now(variant)])).order

    with pytest.raises(ReturnNotAllowedError):
        services.order_return(
            actor=associate,
            order_id=order.pk,
            location_id=network["store"].pk,
            lines=[ReturnInput(order.lines.get().pk, 2)],
            idempotency_key="r",
        )


def test_an_exchange_creates_the_replacement_line_and_moves_no_money(network, variant, associate, client):
    other_size = VariantFactory(product=variant.product, size="L", price=variant.price)
    give_stock(network["store"], variant, 1)
    give_stock(network["store"], other_size, 1)
    order = place(associate, draft(location=network["store"], lines=[take_now(variant)])).order
    line = order.lines.get()

    services.order_return(
        actor=associate,
        order_id=order.pk,
        location_id=network["store"].pk,
        lines=[ReturnInput(line.pk, 1, replacement_variant_id=other_size.pk)],
        idempotency_key="x",
    )

    order.refresh_from_db()
    replacement = order.lines.get(exchange_for=line)
    assert (replacement.variant_id, replacement.total) == (other_size.pk, D("49.00"))
    assert level(network["store"], variant).on_hand == 1
    assert level(network["store"], other_size).on_hand == 0
    card_payment = Payment.objects.get(order=order, tender=Tender.CARD)
    assert card_payment.refunded_amount == 0
    assert order.total - order.refunded_total == D("49.00")  # what the customer paid, once
    assert order.status == Status.COLLECTED
    # The books refund the exchange tender; the customer got no money back, and the pages say so.
    assert (order.refunded_to_customer, order.exchanged_total) == (D("0.00"), D("49.00"))
    client.force_login(associate)
    page = client.get(f"/orders/{order.number}/").content.decode()
    assert 'data-testid="refunded">0.00<' in page and 'data-testid="exchanged">49.00<' in page


def test_gift_card_pays_and_is_credited_back_on_return(network, variant, associate):
    give_stock(network["store"], variant, 1)
    gift = services.gift_card_issue(actor=SYSTEM, amount=D("30.00"), code="GIFT-1", idempotency_key="issue-1")
    order = place(
        associate,
        draft(
            location=network["store"],
            lines=[take_now(variant)],
            tenders=[TenderInput(Tender.GIFT_CARD, D("30.00"), gift_card_code="gift-1"), card("19.00")],
        ),
    ).order
    gift.refresh_from_db()
    assert gift.balance == D("0.00")

    services.order_return(
        actor=associate,
        order_id=order.pk,
        location_id=network["store"].pk,
        lines=[ReturnInput(order.lines.get().pk, 1)],
        idempotency_key="gift-ret",
    )

    gift.refresh_from_db()
    assert gift.balance == D("30.00")
    assert Payment.objects.get(order=order, tender=Tender.CARD).refunded_amount == D("19.00")


def test_a_gift_card_cannot_pay_more_than_its_balance(network, variant, associate):
    give_stock(network["store"], variant, 1)
    services.gift_card_issue(actor=SYSTEM, amount=D("10.00"), code="LOW", idempotency_key="issue-low")

    with pytest.raises(GiftCardError, match=r"10\.00"):
        place(
            associate,
            draft(
                location=network["store"],
                lines=[take_now(variant)],
                tenders=[TenderInput(Tender.GIFT_CARD, D("20.00"), gift_card_code="LOW"), card("29.00")],
            ),
        )

    assert GiftCard.objects.get(code="LOW").balance == D("10.00")
    assert not Order.objects.exists()


def test_loyalty_points_pay_and_come_back_on_cancel(network, variant, associate, customer):
    from customers.services import loyalty_earn

    loyalty_earn(customer_id=customer.pk, amount=D("1000"), order_ref="old", idempotency_key="seed", actor=SYSTEM)
    give_stock(network["warehouse"], variant, 1)
    order = place(
        associate,
        draft(
            location=network["store"],
            customer=customer,
            lines=[ship(variant)],
            tenders=[TenderInput(Tender.LOYALTY, D("5.00"), loyalty_points=500), card("44.00")],
        ),
    ).order
    customer.loyalty.refresh_from_db()
    balance_after_order = customer.loyalty.balance

    services.order_cancel(actor=associate, order_id=order.pk)

    customer.loyalty.refresh_from_db()
    assert customer.loyalty.balance > balance_after_order
    refunds = dict(Refund.objects.values_list("payment__tender", "amount"))
    assert refunds == {"card": D("44.00"), "loyalty": D("5.00")}
