"""Inventory out, against a local fake of the online store's Admin GraphQL API."""

import pytest

from inventory.services import SystemActor, stock_receive, stock_reserve
from online import push
from online.models import InventoryPush, OnlineInventoryLevel, PushStatus
from tests.factories import VariantFactory
from tests.fakes.online_store import FakeOnlineStore

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("test")
ONLINE_LOCATION = 61234567890


@pytest.fixture
def store_api(settings):
    fake = FakeOnlineStore().start()
    settings.SHOPIFY_ADMIN_API_URL = fake.url
    settings.SHOPIFY_ACCESS_TOKEN = "test-token"
    yield fake
    fake.stop()


@pytest.fixture
def web_variant(online_warehouse):
    return VariantFactory(online_inventory_item_id=46001122334455)


def collect(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        return push.inventory_push_collect()


def send_all():
    return [
        push.inventory_push_send(push_id=p) for p in InventoryPush.objects.order_by("pk").values_list("pk", flat=True)
    ]


def test_a_burst_of_changes_is_pushed_once_with_the_current_value(
    store_api, online_warehouse, web_variant, django_capture_on_commit_callbacks
):
    for quantity in (5, 3, 2):
        stock_receive(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=web_variant.pk, quantity=quantity)
    stock_reserve(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=web_variant.pk, quantity=4)

    assert collect(django_capture_on_commit_callbacks) == 1
    [result] = send_all()

    assert result.status == PushStatus.SENT
    assert store_api.levels[(46001122334455, ONLINE_LOCATION)] == 6
    [mutation] = store_api.mutations
    assert mutation["idempotencyKey"]
    assert mutation["input"]["quantities"][0]["changeFromQuantity"] is None
    assert OnlineInventoryLevel.objects.get().pushed_available == 6


def test_nothing_is_pushed_when_available_did_not_change(
    store_api, online_warehouse, web_variant, django_capture_on_commit_callbacks
):
    stock_receive(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=web_variant.pk, quantity=5)
    collect(django_capture_on_commit_callbacks)
    send_all()

    assert collect(django_capture_on_commit_callbacks) == 0


def test_http_429_retries_after_the_advertised_wait_with_the_same_key(
    store_api, online_warehouse, web_variant, django_capture_on_commit_callbacks
):
    stock_receive(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=web_variant.pk, quantity=5)
    collect(django_capture_on_commit_callbacks)
    store_api.fail_next("429")

    first = push.inventory_push_send(push_id=InventoryPush.objects.get().pk)
    second = push.inventory_push_send(push_id=InventoryPush.objects.get().pk)

    assert (first.status, first.retry_after) == ("retrying", 1.5)
    assert second.status == PushStatus.SENT
    keys = {request["variables"]["idempotencyKey"] for request in store_api.requests}
    assert len(keys) == 1


def test_graphql_throttled_with_http_200_is_recognised(
    store_api, online_warehouse, web_variant, django_capture_on_commit_callbacks
):
    stock_receive(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=web_variant.pk, quantity=5)
    collect(django_capture_on_commit_callbacks)
    store_api.fail_next("THROTTLED")

    result = push.inventory_push_send(push_id=InventoryPush.objects.get().pk)

    assert result.status == "retrying"
    assert result.retry_after == pytest.approx(0.5)
    assert store_api.levels == {}


def test_stale_change_from_rereads_the_store_and_pushes_again_with_a_new_key(
    store_api, online_warehouse, web_variant, django_capture_on_commit_callbacks
):
    OnlineInventoryLevel.objects.create(
        location=online_warehouse, variant=web_variant, online_available=4, pushed_available=4
    )
    store_api.levels[(46001122334455, ONLINE_LOCATION)] = 9  # a sale online moved it meanwhile
    stock_receive(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=web_variant.pk, quantity=12)
    collect(django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=False):
        stale = push.inventory_push_send(push_id=InventoryPush.objects.get().pk)
    replacement = InventoryPush.objects.order_by("pk").last()
    final = push.inventory_push_send(push_id=replacement.pk)

    assert stale.status == "superseded"
    assert final.status == PushStatus.SENT
    assert replacement.quantities == [{"variant_id": web_variant.pk, "quantity": 12, "change_from": 9}]
    assert store_api.levels[(46001122334455, ONLINE_LOCATION)] == 12
    first_key, second_key = (
        r["variables"]["idempotencyKey"] for r in store_api.requests if "idempotencyKey" in r["variables"]
    )
    assert first_key != second_key


def test_reconciliation_reports_drift_without_changing_anything(
    store_api, online_warehouse, web_variant, django_capture_on_commit_callbacks
):
    stock_receive(actor=SYSTEM, location_id=online_warehouse.pk, variant_id=web_variant.pk, quantity=5)
    store_api.levels[(46001122334455, ONLINE_LOCATION)] = 2

    assert push.inventory_reconcile_all() == 1

    from online.models import DriftReport

    report = DriftReport.objects.get()
    assert report.details == [{"sku": web_variant.sku, "omni": 5, "online": 2}]
    assert store_api.levels[(46001122334455, ONLINE_LOCATION)] == 2
