"""Orders in the admin: read-only orders; gift cards and manager PINs through the services."""

from decimal import Decimal

import pytest

from orders.models import GiftCard, GiftCardEntry, ManagerPin
from orders.services import manager_approve
from tests.factories.orders import draft, give_stock, place, take_now

pytestmark = pytest.mark.django_db


def test_order_changelist_and_detail(client, admin_user, network, variant, associate):
    give_stock(network["store"], variant, 1)
    order = place(associate, draft(location=network["store"], lines=[take_now(variant)])).order
    client.force_login(admin_user)

    assert client.get("/admin/orders/order/").status_code == 200
    assert client.get(f"/admin/orders/order/{order.pk}/change/").status_code == 200


def test_issue_a_gift_card_in_the_admin(client, admin_user):
    client.force_login(admin_user)

    response = client.post("/admin/orders/giftcard/add/", {"code": "WELCOME25", "kind": "gift_card", "amount": "25.00"})

    assert response.status_code == 302
    card = GiftCard.objects.get(code="WELCOME25")
    assert card.balance == Decimal("25.00")
    assert GiftCardEntry.objects.get(card=card).reason == "issue"


def test_set_a_manager_pin_in_the_admin(client, admin_user, manager, store):
    client.force_login(admin_user)

    client.post("/admin/orders/managerpin/add/", {"user": manager.pk, "pin": "1357"})

    assert ManagerPin.objects.filter(user=manager).exists()
    assert manager_approve(pin="1357", location_id=store.pk) == manager
