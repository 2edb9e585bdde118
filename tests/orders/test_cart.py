"""The cart on the tablet: holds with an expiry, re-holding, leaving, checkout by key."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory import services as stock
from inventory.models import Reservation, ReservationStatus, StockLevel
from orders import services
from orders.errors import ApprovalRejectedError, ApprovalRequiredError, CartError, InvalidOrderError, OutOfStockError
from orders.models import Cart, CartHold, CartLine, FulfilmentKind, Order
from orders.pricing import Discount
from tests.factories.orders import card, give_stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def cart(network, associate):
    return services.cart_get_or_create(user=associate, location_id=network["store"].pk)


def level(location, variant):
    return StockLevel.objects.get(location=location, variant=variant)


def test_a_ship_line_holds_stock_with_an_expiry(network, variant, associate, cart, settings):
    settings.OMNI_RESERVATION_MINUTES = 15
    give_stock(network["warehouse"], variant, 3)

    line = services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk, kind=FulfilmentKind.SHIP)

    hold = CartHold.objects.get(line=line)
    assert hold.location_id == network["warehouse"].pk
    assert level(network["warehouse"], variant).reserved == 1
    reservation = hold.reservation
    assert (reservation.reference_type, reservation.reference_id) == ("cart", str(cart.pk))
    assert timedelta(minutes=14) < reservation.expires_at - timezone.now() <= timedelta(minutes=15)


def test_a_take_now_scan_adds_to_the_same_line_and_holds_nothing(network, variant, associate, cart):
    for _ in range(2):
        services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk)

    assert CartLine.objects.get(cart=cart).quantity == 2
    assert not Reservation.objects.exists()


def test_collect_at_this_store_holds_here(network, variant, associate, cart):
    give_stock(network["store"], variant, 1)
    give_stock(network["warehouse"], variant, 5)

    line = services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk, kind=FulfilmentKind.COLLECT)

    assert line.pickup_location_id == network["store"].pk
    assert CartHold.objects.get(line=line).location_id == network["store"].pk


def test_nothing_anywhere_is_a_clear_error_and_no_line(network, variant, associate, cart):
    give_stock(network["far"], variant, 0 + 1)

    with pytest.raises(OutOfStockError) as error:
        services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk, quantity=3, kind=FulfilmentKind.SHIP)

    assert "Dallas Uptown (1)" in error.value.message
    assert not CartLine.objects.exists()


def test_changing_the_fulfilment_moves_the_hold(network, variant, associate, cart):
    give_stock(network["warehouse"], variant, 2)
    give_stock(network["store"], variant, 2)
    line = services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk, kind=FulfilmentKind.SHIP)

    services.cart_line_update(actor=associate, cart_id=cart.pk, line_id=line.pk, kind=FulfilmentKind.COLLECT)

    assert level(network["warehouse"], variant).reserved == 0
    assert level(network["store"], variant).reserved == 1


def test_clearing_the_cart_releases_every_hold_and_draws_a_new_key(network, variant, associate, cart):
    give_stock(network["warehouse"], variant, 2)
    services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk, kind=FulfilmentKind.SHIP)
    old_key = cart.checkout_key

    services.cart_clear(actor=associate, cart_id=cart.pk)

    assert level(network["warehouse"], variant).reserved == 0
    assert not CartLine.objects.exists()
    assert Cart.objects.get(pk=cart.pk).checkout_key != old_key
    assert Reservation.objects.get().status == ReservationStatus.RELEASED


def test_an_expired_hold_blocks_checkout_until_held_again(network, variant, associate, cart):
    give_stock(network["warehouse"], variant, 2)
    line = services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk, kind=FulfilmentKind.SHIP)
    Reservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    stock.reservations_expire()

    with pytest.raises(CartError, match="expired"):
        services.cart_checkout(
            actor=associate, cart_id=cart.pk, checkout_key=cart.checkout_key, tenders=[card("49.00")]
        )

    services.cart_line_rehold(actor=associate, cart_id=cart.pk, line_id=line.pk)
    assert level(network["warehouse"], variant).reserved == 1


def test_checkout_converts_holds_and_empties_the_cart(network, variant, associate, cart, customer):
    give_stock(network["warehouse"], variant, 2)
    give_stock(network["store"], variant, 1)
    services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk)
    services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk, kind=FulfilmentKind.SHIP)
    services.cart_set_customer(actor=associate, cart_id=cart.pk, customer_id=customer.pk)
    services.cart_set_address(
        actor=associate, cart_id=cart.pk, address=services.Address("Ada", "1 Main St", "", "Austin", "TX", "78701")
    )
    key = Cart.objects.get(pk=cart.pk).checkout_key

    result = services.cart_checkout(actor=associate, cart_id=cart.pk, checkout_key=key, tenders=[card("98.00")])

    assert result.created
    warehouse = level(network["warehouse"], variant)
    assert (warehouse.reserved, warehouse.committed) == (0, 1)
    assert level(network["store"], variant).on_hand == 0
    assert not CartLine.objects.exists()
    assert Reservation.objects.get().status == ReservationStatus.COMMITTED
    # The same key again (a double tap after the cart was emptied) gives the same order.
    again = services.cart_checkout(actor=associate, cart_id=cart.pk, checkout_key=key, tenders=[card("98.00")])
    assert again.order.pk == result.order.pk and not again.created
    assert Order.objects.count() == 1


def test_a_big_discount_needs_a_manager(network, variant, associate, manager, cart):
    line = services.cart_add(actor=associate, cart_id=cart.pk, variant_id=variant.pk)

    with pytest.raises(ApprovalRequiredError):
        services.cart_set_line_discount(
            actor=associate, cart_id=cart.pk, line_id=line.pk, discount=Discount("percent", Decimal("30"))
        )
    with pytest.raises(ApprovalRejectedError):
        services.cart_set_line_discount(
            actor=associate,
            cart_id=cart.pk,
            line_id=line.pk,
            discount=Discount("percent", Decimal("30")),
            approver=associate,
        )

    approved = services.cart_set_line_discount(
        actor=associate, cart_id=cart.pk, line_id=line.pk, discount=Discount("percent", Decimal("30")), approver=manager
    )
    assert approved.discount_approved_by == manager
    result = services.cart_checkout(
        actor=associate, cart_id=cart.pk, checkout_key=cart.checkout_key, tenders=[card("34.30")]
    )
    order_line = result.order.lines.get()
    assert (order_line.line_discount, order_line.discount_approved_by) == (Decimal("14.70"), manager)
    assert "approved by manager" in result.order.events.get(kind="discount").message


def test_manager_credentials_and_pin_approve(network, manager, store):
    assert (
        services.manager_approve(username="manager", password="correct-horse-battery", location_id=store.pk) == manager
    )
    services.manager_pin_set(user=manager, pin="2468")
    assert services.manager_approve(pin="2468", location_id=store.pk) == manager
    with pytest.raises(ApprovalRejectedError):
        services.manager_approve(pin="0000", location_id=store.pk)
    with pytest.raises(InvalidOrderError, match="4 to 8 digits"):
        services.manager_pin_set(user=manager, pin="²⁴⁶⁸")
