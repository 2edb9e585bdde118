"""Placing an order: lines, fulfilments, stock, money, events, idempotency."""

from decimal import Decimal

import pytest
from django.db.models import Sum

from customers.models import CustomerPurchase
from inventory.models import MovementReason, StockLevel, StockMovement
from orders import services
from orders.errors import (
    AddressRequiredError,
    CustomerRequiredError,
    InvalidOrderError,
    InvalidTenderError,
    OutOfStockError,
    PaymentMismatchError,
)
from orders.models import Channel, Fulfilment, FulfilmentKind, Order, OrderEvent, Payment, Status
from tests.factories.orders import card, cash, collect, draft, give_stock, place, ship, take_now

pytestmark = pytest.mark.django_db


def level(location, variant):
    return StockLevel.objects.get(location=location, variant=variant)


def test_take_now_sale_sells_from_the_shelf_and_completes(network, variant, associate):
    store = network["store"]
    give_stock(store, variant, 3)

    result = place(associate, draft(location=store, lines=[take_now(variant, 2)]))

    order = result.order
    assert result.created
    assert (order.channel, order.status, order.total) == (Channel.STORE, Status.COLLECTED, Decimal("98.00"))
    assert order.number.startswith("SO-")
    assert level(store, variant).on_hand == 1
    sale = StockMovement.objects.get(reason=MovementReason.SALE)
    assert (sale.quantity, sale.reference_type, sale.reference_id) == (-2, "order", order.number)
    fulfilment = Fulfilment.objects.get(order=order)
    assert (fulfilment.kind, fulfilment.status) == (FulfilmentKind.TAKE_NOW, Status.COLLECTED)


def test_take_now_is_never_blocked_and_flags_a_count(network, variant, associate):
    store = network["store"]

    place(associate, draft(location=store, lines=[take_now(variant, 1)]))

    assert level(store, variant).on_hand == 0
    assert level(store, variant).needs_count
    assert StockMovement.objects.filter(reason=MovementReason.FOUND_STOCK, quantity=1).exists()


def test_tax_is_contained_in_the_price_at_the_store_rate(network, variant, associate):
    store = network["store"]  # 8.25%
    give_stock(store, variant, 1)

    order = place(associate, draft(location=store, lines=[take_now(variant)])).order

    # 49.00 - 49.00 / 1.0825 = 3.7344... -> 3.73
    assert order.tax_total == Decimal("3.73")
    assert order.lines.get().tax_amount == Decimal("3.73")


def test_ship_line_commits_at_the_warehouse_first(network, variant, associate, customer):
    give_stock(network["warehouse"], variant, 5)
    give_stock(network["store"], variant, 5)

    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant, 2)])).order

    assert order.channel == Channel.ENDLESS_AISLE
    assert order.status == Status.ALLOCATED
    line = order.lines.get()
    assert line.source_location_id == network["warehouse"].pk
    assert level(network["warehouse"], variant).committed == 2
    assert level(network["store"], variant).committed == 0
    assert order.ship_line1 == "1 Congress Ave"


def test_mixed_order_groups_lines_into_fulfilments_and_writes_a_timeline(network, variant, associate, customer):
    other = network["other"]
    give_stock(network["store"], variant, 2)
    give_stock(network["warehouse"], variant, 2)
    give_stock(other, variant, 2)

    order = place(
        associate,
        draft(
            location=network["store"],
            customer=customer,
            lines=[take_now(variant), ship(variant), collect(variant, pickup_location_id=other.pk)],
        ),
    ).order

    kinds = sorted(Fulfilment.objects.filter(order=order).values_list("kind", "source_location__code"))
    assert kinds == [("collect", "aus-2"), ("ship", "wh-1"), ("take_now", "aus-1")]
    assert order.status == Status.ALLOCATED  # the least advanced open fulfilment
    events = list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True))
    assert events[0] == "placed"
    assert {"collected", "allocated", "payment"} <= set(events)


def test_customer_purchase_is_recorded_with_the_customers_app_after_commit(
    network, variant, associate, customer, eager_celery, django_capture_on_commit_callbacks
):
    give_stock(network["store"], variant, 1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order = place(associate, draft(location=network["store"], customer=customer, lines=[take_now(variant)])).order
    assert not CustomerPurchase.objects.exists()  # nothing before commit
    for callback in callbacks:
        callback()

    purchase = CustomerPurchase.objects.get(customer=customer)
    assert (purchase.order_ref, purchase.amount) == (order.number, Decimal("49.00"))
    customer.loyalty.refresh_from_db()
    assert customer.loyalty.balance == 49
    # A retried task records nothing twice.
    from orders.services import order_record_customer_purchase

    order_record_customer_purchase(order_id=order.pk)
    assert CustomerPurchase.objects.filter(customer=customer).count() == 1


def test_same_key_places_one_order_and_one_payment(network, variant, associate):
    give_stock(network["store"], variant, 5)
    first_draft = draft(location=network["store"], lines=[take_now(variant)], key="tablet-1")

    first = place(associate, first_draft)
    again = place(associate, draft(location=network["store"], lines=[take_now(variant)], key="tablet-1"))

    assert first.created and not again.created
    assert again.order.pk == first.order.pk
    assert Order.objects.count() == 1
    assert Payment.objects.count() == 1
    assert level(network["store"], variant).on_hand == 4


def test_ship_and_collect_need_a_customer(network, variant, associate):
    give_stock(network["warehouse"], variant, 1)

    with pytest.raises(CustomerRequiredError):
        place(associate, draft(location=network["store"], lines=[ship(variant)]))

    assert not Order.objects.exists()


def test_ship_needs_an_address(network, variant, associate, customer):
    give_stock(network["warehouse"], variant, 1)
    from orders.services import Address

    with pytest.raises(AddressRequiredError):
        place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant)], address=Address()))


def test_tenders_must_add_up_to_the_total_and_nothing_is_written_otherwise(network, variant, associate):
    give_stock(network["store"], variant, 1)

    with pytest.raises(PaymentMismatchError) as error:
        place(associate, draft(location=network["store"], lines=[take_now(variant)], tenders=[card("40.00")]))

    assert "49.00" in error.value.message
    assert not Order.objects.exists()
    assert level(network["store"], variant).on_hand == 1


def test_split_tenders_card_and_cash_with_change(network, variant, associate):
    give_stock(network["store"], variant, 2)

    order = place(
        associate,
        draft(
            location=network["store"],
            lines=[take_now(variant, 2)],
            tenders=[card("60.00", last4="1234"), cash("38.00", tendered="50.00")],
        ),
    ).order

    payments = list(order.payments.order_by("position"))
    assert [(p.tender, p.amount) for p in payments] == [("card", Decimal("60.00")), ("cash", Decimal("38.00"))]
    assert payments[0].card_last4 == "1234"
    assert payments[1].change_given == Decimal("12.00")


def test_card_needs_last_four_digits(network, variant, associate):
    give_stock(network["store"], variant, 1)

    with pytest.raises(InvalidTenderError):
        place(
            associate, draft(location=network["store"], lines=[take_now(variant)], tenders=[card("49.00", last4="12")])
        )
    with pytest.raises(InvalidTenderError):
        place(
            associate,
            draft(location=network["store"], lines=[take_now(variant)], tenders=[card("49.00", last4="¹²³⁴")]),
        )


def test_not_enough_anywhere_says_where_it_is(network, variant, associate, customer):
    give_stock(network["warehouse"], variant, 1)
    give_stock(network["other"], variant, 1)

    with pytest.raises(OutOfStockError) as error:
        place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant, 5)]))

    assert "Austin Domain (1)" in error.value.message
    assert "Central Warehouse (1)" in error.value.message
    assert not Order.objects.exists()


def test_safety_stock_is_never_sold_for_shipping(network, variant, associate, customer):
    give_stock(network["warehouse"], variant, 3, safety=3)
    give_stock(network["other"], variant, 2)

    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant, 2)])).order

    assert order.lines.get().source_location_id == network["other"].pk


def test_a_line_splits_over_two_sources_only_when_no_single_source_has_enough(network, variant, associate, customer):
    give_stock(network["warehouse"], variant, 2)
    give_stock(network["other"], variant, 2)

    order = place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant, 3)])).order

    parts = sorted(order.lines.values_list("source_location__code", "quantity"))
    assert parts == [("aus-2", 1), ("wh-1", 2)] or parts == [("aus-2", 2), ("wh-1", 1)]
    assert sum(q for _, q in parts) == 3
    assert order.lines.aggregate(t=Sum("total"))["t"] == Decimal("147.00")


def test_unknown_variant_is_a_clear_error(network, associate):
    from orders.services import DraftLine

    with pytest.raises(InvalidOrderError):
        services.order_place(
            actor=associate,
            draft=draft(location=network["store"], lines=[DraftLine(999999, 1)], tenders=[cash("1.00")]),
        )


def test_unsourceable_request_is_recorded_as_lost_demand(network, variant, associate, customer):
    from orders.models import LostDemand

    give_stock(network["warehouse"], variant, 1)

    with pytest.raises(OutOfStockError) as error:
        place(associate, draft(location=network["store"], customer=customer, lines=[ship(variant, 3)]))

    lost = LostDemand.objects.get()
    assert (lost.variant_id, lost.quantity, lost.location_id, lost.fulfilment) == (
        variant.pk,
        2,
        network["store"].pk,
        "ship",
    )
    assert "lost" not in error.value.extra
