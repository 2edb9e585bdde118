"""Online orders through webhooks: committed once, in any order, never oversold, refunds restock once."""

from decimal import Decimal

import pytest

from inventory.models import StockLevel
from inventory.services import SystemActor, stock_receive
from online import services
from online.models import DeliveryStatus, WebhookDelivery
from orders.models import Channel, Order
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("test")
ORDER_ID = 5832104398123


@pytest.fixture
def tee(online_warehouse):
    variant = VariantFactory(sku="TEE-BLK-M", online_variant_id=44843037917398, price=Decimal("35.00"))
    stock_receive(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=variant.pk, quantity=3)
    return variant


def order_payload(**changes):
    payload = {
        "id": ORDER_ID,
        "name": "#1042",
        "email": "ana.lopez@example.com",
        "phone": None,
        "created_at": "2026-03-14T10:22:31-04:00",
        "updated_at": "2026-03-14T10:22:33-04:00",
        "cancelled_at": None,
        "cancel_reason": None,
        "total_discounts": "0.00",
        "location_id": 61234567890,
        "customer": {"id": 7012345678901, "email": "ana.lopez@example.com", "first_name": "Ana", "last_name": "Lopez"},
        "line_items": [
            {"id": 14851429007434, "variant_id": 44843037917398, "sku": "TEE-BLK-M", "title": "Basic Tee",
             "quantity": 2, "current_quantity": 2, "price": "32.00", "gift_card": False},
        ],
        "shipping_address": {"first_name": "Ana", "last_name": "Lopez", "address1": "12 Elm St", "address2": None,
                             "city": "Austin", "province_code": "TX", "zip": "78701", "country_code": "US"},
    }  # fmt: skip
    payload.update(changes)
    return payload


def process_all():
    for delivery_id in WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True):
        services.delivery_process(delivery_id=delivery_id)


def level(location, variant):
    return StockLevel.objects.get(location=location, variant=variant)


def test_online_order_commits_stock_once_at_the_mapped_location(send_webhook, online_warehouse, tee):
    send_webhook("orders/create", order_payload(), webhook_id="a")
    send_webhook("orders/create", order_payload(), webhook_id="a")  # duplicate delivery
    send_webhook("orders/create", order_payload(), webhook_id="b")  # same event, new delivery id
    process_all()

    order = Order.objects.get()
    assert (order.channel, order.external_ref) == (Channel.ONLINE, f"shopify:{ORDER_ID}")
    assert order.total == Decimal("64.00")
    assert order.customer is not None
    assert (level(online_warehouse, tee).committed, level(online_warehouse, tee).available) == (2, 1)
    assert list(WebhookDelivery.objects.order_by("pk").values_list("status", flat=True)) == ["processed", "stale"]


def test_update_overtaking_its_create_places_the_order_and_the_create_is_skipped(send_webhook, online_warehouse, tee):
    send_webhook("orders/updated", order_payload(updated_at="2026-03-14T10:30:00-04:00"))
    send_webhook("orders/create", order_payload())
    process_all()

    assert Order.objects.count() == 1
    assert level(online_warehouse, tee).committed == 2
    assert list(WebhookDelivery.objects.order_by("pk").values_list("status", flat=True)) == ["processed", "stale"]


def test_cancellation_releases_the_commitment(send_webhook, online_warehouse, tee):
    send_webhook("orders/create", order_payload())
    send_webhook(
        "orders/cancelled",
        order_payload(updated_at="2026-03-14T11:00:00-04:00", cancelled_at="2026-03-14T11:00:00-04:00",
                      cancel_reason="customer"),
    )  # fmt: skip
    process_all()

    assert Order.objects.get().status == "cancelled"
    assert (level(online_warehouse, tee).committed, level(online_warehouse, tee).available) == (0, 3)


def test_order_cancelled_before_omni_saw_it_is_never_placed(send_webhook, online_warehouse, tee):
    cancelled = order_payload(updated_at="2026-03-14T11:00:00-04:00", cancelled_at="2026-03-14T11:00:00-04:00")
    send_webhook("orders/cancelled", cancelled)
    send_webhook("orders/create", order_payload())
    process_all()

    assert Order.objects.count() == 0
    assert level(online_warehouse, tee).available == 3


def test_more_than_available_is_an_error_not_an_oversell_and_can_be_replayed(
    send_webhook, online_warehouse, tee, admin_user
):
    big = order_payload(line_items=[{**order_payload()["line_items"][0], "quantity": 5, "current_quantity": 5}])
    send_webhook("orders/create", big)
    process_all()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.ERROR
    assert "TEE-BLK-M" in delivery.error
    assert Order.objects.count() == 0
    assert level(online_warehouse, tee).committed == 0

    stock_receive(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=tee.pk, quantity=2)
    services.delivery_replay(actor=admin_user, delivery_id=delivery.pk)
    services.delivery_process(delivery_id=delivery.pk)

    assert Order.objects.count() == 1
    assert level(online_warehouse, tee).committed == 5


def test_unknown_sku_is_an_error_naming_it(send_webhook, online_warehouse, tee):
    unknown = order_payload(line_items=[{**order_payload()["line_items"][0], "variant_id": 1, "sku": "NOPE-1"}])
    send_webhook("orders/create", unknown)
    process_all()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.ERROR
    assert "Unknown SKU(s) NOPE-1" in delivery.error


def test_refund_with_cancel_restock_releases_units_once(send_webhook, online_warehouse, tee):
    send_webhook("orders/create", order_payload())
    refund = {
        "id": 912345678901,
        "order_id": ORDER_ID,
        "created_at": "2026-03-20T09:01:12-04:00",
        "processed_at": "2026-03-20T09:01:12-04:00",
        "refund_line_items": [
            {"id": 3358811, "line_item_id": 14851429007434, "quantity": 1, "restock_type": "cancel",
             "location_id": 61234567890, "line_item": {"id": 14851429007434, "sku": "TEE-BLK-M", "quantity": 2}},
        ],
    }  # fmt: skip
    send_webhook("refunds/create", refund, webhook_id="r1")
    send_webhook("refunds/create", refund, webhook_id="r2")  # same refund, new delivery
    process_all()

    assert level(online_warehouse, tee).committed == 1
    assert list(WebhookDelivery.objects.order_by("pk").values_list("status", flat=True)) == [
        "processed",
        "processed",
        "stale",
    ]


def test_shop_discounts_lower_the_charged_prices(send_webhook, online_warehouse, tee):
    send_webhook("orders/create", order_payload(total_discounts="6.40"))
    process_all()

    order = Order.objects.get()
    assert order.total == Decimal("57.60")
    assert order.payments.get().amount == Decimal("57.60")


def test_a_refund_before_its_order_is_retried_not_dropped(send_webhook, online_warehouse, tee):
    refund = {"id": 912345678902, "order_id": ORDER_ID, "created_at": "2026-03-20T09:01:12-04:00",
              "refund_line_items": []}  # fmt: skip
    send_webhook("refunds/create", refund)

    with pytest.raises(services.RetryLater):
        process_all()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert "retried until its orders/create is processed" in delivery.error
