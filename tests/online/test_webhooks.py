"""Signed webhooks in: verified, stored durably, processed exactly once, errors kept for replay."""

import pytest

from inventory.models import Variant
from inventory.services import SystemActor, stock_receive
from online import services
from online.models import DeliveryStatus, OnlineInventoryLevel, WebhookDelivery
from tests.factories import VariantFactory
from tests.online.conftest import OLD_SECRET

pytestmark = pytest.mark.django_db

PRODUCT = {
    "id": 8273463967958,
    "title": "Basic Tee",
    "handle": "basic-tee",
    "status": "active",
    "vendor": "Acme",
    "product_type": "Tops",
    "updated_at": "2026-03-14T10:22:34-04:00",
    "options": [{"name": "Color", "position": 1}, {"name": "Size", "position": 2}],
    "variants": [
        {
            "id": 44843037917398,
            "sku": "TEE-BLK-M",
            "barcode": "0712345678904",
            "price": "32.00",
            "option1": "Black",
            "option2": "M",
            "option3": None,
            "inventory_item_id": 46001122334455,
        },
        {
            "id": 44843037917399,
            "sku": "TEE-BLK-L",
            "barcode": "123",
            "price": "32.00",
            "option1": "Black",
            "option2": "L",
            "option3": None,
            "inventory_item_id": 46001122334456,
        },
    ],
}


def process_all():
    for delivery_id in WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True):
        services.delivery_process(delivery_id=delivery_id)


def test_signed_delivery_is_stored_and_queued_after_commit(send_webhook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = send_webhook("products/update", PRODUCT, webhook_id="w-1")

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.topic, delivery.webhook_id, delivery.status) == ("products/update", "w-1", "received")
    assert delivery.headers["X-Shopify-Api-Version"] == "2026-04"
    assert len(callbacks) == 1


def test_bad_or_missing_signature_is_401_and_stores_nothing(send_webhook, client):
    response = send_webhook("products/update", PRODUCT, secret="wrong")
    missing = client.post("/webhooks/shopify/", data=b"{}", content_type="application/json")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert missing.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_previous_secret_is_accepted_during_rotation(send_webhook):
    assert send_webhook("products/update", PRODUCT, secret=OLD_SECRET).status_code == 200


def test_duplicate_delivery_is_acknowledged_and_processed_once(send_webhook):
    first = send_webhook("products/update", PRODUCT, webhook_id="dup")
    second = send_webhook("products/update", PRODUCT, webhook_id="dup")
    process_all()

    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "duplicate"
    delivery = WebhookDelivery.objects.get()
    assert delivery.duplicates == 1
    assert delivery.status == DeliveryStatus.PROCESSED
    assert Variant.objects.filter(product__online_product_id=PRODUCT["id"]).count() == 2


def test_product_upsert_matches_by_item_then_sku_and_drops_bad_barcodes(send_webhook):
    existing = VariantFactory(sku="TEE-BLK-M", barcode=None)

    send_webhook("products/create", PRODUCT)
    process_all()

    existing.refresh_from_db()
    assert existing.online_inventory_item_id == 46001122334455
    assert existing.barcode == "0712345678904"
    large = Variant.objects.get(sku="TEE-BLK-L")
    assert (large.size, large.colour, large.barcode) == ("L", "Black", None)
    assert "not a valid GTIN" in WebhookDelivery.objects.get().error


def test_older_update_after_newer_is_skipped_as_stale(send_webhook):
    newer = {**PRODUCT, "title": "Basic Tee v2", "updated_at": "2026-03-15T10:00:00-04:00"}
    send_webhook("products/update", newer)
    send_webhook("products/update", PRODUCT)
    process_all()

    assert Variant.objects.get(sku="TEE-BLK-M").product.name == "Basic Tee v2"
    assert list(WebhookDelivery.objects.order_by("pk").values_list("status", flat=True)) == ["processed", "stale"]


def test_malformed_json_is_stored_and_rejected_with_a_clear_error(send_webhook):
    response = send_webhook("orders/create", raw=b"{not json")
    process_all()

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.REJECTED
    assert delivery.error.startswith("Malformed JSON")


def test_a_nul_character_is_rejected_at_once_not_retried(send_webhook):
    # PostgreSQL refuses NUL in text: the delivery failed and was retried until it gave up.
    send_webhook("products/update", raw=b'{"id": 1, "title": "Tee\\u0000", "variants": []}')
    process_all()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.REJECTED, 1)
    assert "NUL" in delivery.error


def test_a_payload_of_the_wrong_shape_is_rejected_at_once_not_retried(send_webhook):
    # An order id of "abc" raised ValueError in the handler: retried as if the database had hiccuped.
    send_webhook("orders/create", {"id": "abc", "updated_at": "2026-03-15T10:00:00-04:00", "line_items": []})
    process_all()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.REJECTED, 1)
    assert delivery.error.startswith("Malformed payload: ValueError")


def test_missing_fields_are_an_error_kept_for_the_operator(send_webhook):
    send_webhook("products/update", {"id": 1})
    process_all()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.ERROR
    assert "Missing required field(s): title, updated_at" in delivery.error


def test_unhandled_topic_is_stored_and_ignored(send_webhook):
    send_webhook("shop/update", {"id": 1})
    process_all()

    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


def test_oversized_body_is_stored_rejected_and_not_queued(send_webhook, settings, django_capture_on_commit_callbacks):
    settings.SHOPIFY_WEBHOOK_MAX_BYTES = 100
    with django_capture_on_commit_callbacks() as callbacks:
        response = send_webhook("products/update", PRODUCT)

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.REJECTED
    assert "exceeds the 100-byte processing limit" in delivery.error
    assert callbacks == []


def test_unknown_item_level_errors_then_replay_after_fix_succeeds(send_webhook, online_warehouse, admin_user):
    level = {
        "inventory_item_id": 999,
        "location_id": 61234567890,
        "available": 4,
        "updated_at": "2026-03-14T10:22:34-04:00",
    }
    send_webhook("inventory_levels/update", level)
    process_all()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.ERROR
    assert "Unknown inventory item 999" in delivery.error

    VariantFactory(online_inventory_item_id=999)
    services.delivery_replay(actor=admin_user, delivery_id=delivery.pk)
    services.delivery_process(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert OnlineInventoryLevel.objects.get().online_available == 4


def test_inventory_level_echo_of_our_push_is_recognised(send_webhook, online_warehouse):
    variant = VariantFactory(online_inventory_item_id=555)
    OnlineInventoryLevel.objects.create(location=online_warehouse, variant=variant, pushed_available=7)

    send_webhook(
        "inventory_levels/update",
        {
            "inventory_item_id": 555,
            "location_id": 61234567890,
            "available": 7,
            "updated_at": "2026-03-14T10:22:34-04:00",
        },
    )
    send_webhook(
        "inventory_levels/update",
        {
            "inventory_item_id": 555,
            "location_id": 61234567890,
            "available": 5,
            "updated_at": "2026-03-14T10:23:34-04:00",
        },
    )
    process_all()

    level = OnlineInventoryLevel.objects.get()
    assert level.echoes == 1
    assert level.differs is True
    assert level.online_available == 5


def test_stored_but_unqueued_deliveries_are_requeued_by_the_sweeper(send_webhook, django_capture_on_commit_callbacks):
    send_webhook("products/update", PRODUCT)
    WebhookDelivery.objects.update(updated_at="2026-01-01T00:00:00Z")

    with django_capture_on_commit_callbacks(execute=False):
        requeued = services.deliveries_requeue_stuck(older_than_seconds=60)

    assert requeued == 1


def test_stock_changes_do_not_depend_on_webhooks(online_warehouse):
    """Guard for the pusher tests: stock receipts at a web location write outbox events."""
    variant = VariantFactory(online_inventory_item_id=777)
    stock_receive(actor=SystemActor("t"), location_id=online_warehouse.pk, variant_id=variant.pk, quantity=3)

    from omni.models import LiveEvent

    assert LiveEvent.objects.filter(topic="stock").count() == 1


CUSTOMER = {
    "id": 7012345678901,
    "email": "Ana.Lopez@Example.com",
    "first_name": "Ana",
    "last_name": "Lopez",
    "phone": "+1 512 555 0199",
    "state": "enabled",
    "email_marketing_consent": {
        "state": "subscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": "2026-03-14T10:22:31-04:00",
    },
    "sms_marketing_consent": None,
    "updated_at": "2026-03-14T10:22:33-04:00",
}


def test_online_customer_is_matched_to_the_store_customer_by_email(send_webhook):
    from customers.models import Customer
    from customers.services import customer_create

    existing = customer_create(actor=SystemActor("till"), name="Ana L", email="ana.lopez@example.com")

    send_webhook("customers/create", CUSTOMER)
    send_webhook("customers/update", {**CUSTOMER, "updated_at": "2026-03-15T10:00:00-04:00"})
    process_all()

    assert Customer.objects.count() == 1
    existing.refresh_from_db()
    assert existing.phone == "+15125550199"
    assert list(WebhookDelivery.objects.order_by("pk").values_list("status", flat=True)) == ["processed"] * 2


def test_each_consent_channel_keeps_its_own_time(send_webhook):
    from customers.models import ConsentEvent

    payload = {
        **CUSTOMER,
        "id": 7012345678902,
        "sms_marketing_consent": {"state": "subscribed", "consent_updated_at": "2026-02-01T09:00:00-05:00"},
    }
    send_webhook("customers/create", payload)
    process_all()

    times = dict(ConsentEvent.objects.values_list("channel", "occurred_at"))
    assert times["email"].isoformat() == "2026-03-14T14:22:31+00:00"
    assert times["sms"].isoformat() == "2026-02-01T14:00:00+00:00"


def test_a_barcode_owned_by_another_variant_is_dropped_with_a_note(send_webhook):
    VariantFactory(sku="OTHER-1", barcode="0712345678904")

    send_webhook("products/create", PRODUCT)
    process_all()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert "barcode 0712345678904 belongs to another variant" in delivery.error
    assert Variant.objects.get(sku="TEE-BLK-M").barcode is None
