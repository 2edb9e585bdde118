"""POST /api/v1/stock/reservations/ and .../<id>/release/: holds through the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import services
from inventory.models import Reservation, ReservationStatus, StockLevel

pytestmark = pytest.mark.django_db
URL = "/api/v1/stock/reservations/"
SYSTEM = services.SystemActor("test")


def release_url(reservation_id):
    return f"{URL}{reservation_id}/release/"


@pytest.fixture
def variant(store, stock):
    from tests.factories import VariantFactory

    variant = VariantFactory(sku="TEE-1")
    stock(store, variant, 5)
    return variant


def test_associate_holds_stock_at_their_store(store, associate, api_client_for, variant):
    before = timezone.now()

    response = api_client_for(associate).post(
        URL,
        {
            "location": "aus-1",
            "sku": "TEE-1",
            "quantity": 2,
            "minutes": 30,
            "reference_type": "cart",
            "reference_id": "7",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["quantity"], body["status"], body["location"], body["sku"]) == (2, "active", "aus-1", "TEE-1")
    assert body["level"]["reserved"] == 2
    assert body["level"]["available"] == 3
    hold = Reservation.objects.get(pk=body["id"])
    assert hold.created_by == associate
    assert (hold.reference_type, hold.reference_id) == ("cart", "7")
    assert before + timedelta(minutes=29) < hold.expires_at < timezone.now() + timedelta(minutes=31)


def test_hold_until_released_has_no_expiry(store, associate, api_client_for, variant):
    response = api_client_for(associate).post(
        URL, {"location": "aus-1", "sku": "TEE-1", "quantity": 1, "until_released": True}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["expires_at"] is None


def test_holding_more_than_available_is_409_naming_what_is_there(store, associate, api_client_for, variant):
    response = api_client_for(associate).post(URL, {"location": "aus-1", "sku": "TEE-1", "quantity": 6}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert response.json()["extra"]["available"] == 5
    assert not Reservation.objects.exists()


def test_the_same_key_twice_holds_once(store, associate, api_client_for, variant):
    client = api_client_for(associate)
    payload = {"location": "aus-1", "sku": "TEE-1", "quantity": 2}

    first = client.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="cart-7-line-1")
    second = client.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="cart-7-line-1")
    other = client.post(URL, {**payload, "quantity": 3}, format="json", HTTP_IDEMPOTENCY_KEY="cart-7-line-1")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert StockLevel.objects.get(location=store, variant=variant).reserved == 2


def test_nobody_holds_at_another_location(store, other_store, associate, api_client_for, variant):
    response = api_client_for(associate).post(URL, {"location": "aus-2", "sku": "TEE-1", "quantity": 1}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_location"


@pytest.mark.parametrize(
    "payload",
    [
        {"quantity": 0},
        {"quantity": 1, "minutes": 0},
        {"quantity": 1, "minutes": 30, "until_released": True},
        {"quantity": "two"},
    ],
)
def test_bad_hold_input_is_400(store, associate, api_client_for, variant, payload):
    response = api_client_for(associate).post(URL, {"location": "aus-1", "sku": "TEE-1", **payload}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not Reservation.objects.exists()


def test_release_gives_the_units_back_and_a_repeat_changes_nothing(store, associate, api_client_for, variant):
    hold = services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)
    client = api_client_for(associate)

    first = client.post(release_url(hold.pk))
    second = client.post(release_url(hold.pk))

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["status"] == ReservationStatus.RELEASED
    assert StockLevel.objects.get(location=store, variant=variant).available == 5


def test_a_committed_hold_cannot_be_released(store, associate, api_client_for, variant):
    hold = services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2)
    services.stock_commit(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2, reservation_id=hold.pk)

    response = api_client_for(associate).post(release_url(hold.pk))

    assert response.status_code == 409
    assert response.json()["code"] == "reservation_closed"


def test_release_at_another_location_is_forbidden(other_store, other_manager, associate, api_client_for, stock):
    from tests.factories import VariantFactory

    variant = VariantFactory()
    stock(other_store, variant, 3)
    hold = services.stock_reserve(actor=SYSTEM, location_id=other_store.pk, variant_id=variant.pk, quantity=1)

    response = api_client_for(associate).post(release_url(hold.pk))

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_location"
    hold.refresh_from_db()
    assert hold.status == ReservationStatus.ACTIVE


def test_release_of_an_unknown_hold_is_404(store, associate, api_client_for):
    response = api_client_for(associate).post(release_url(999999))

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_reservation"
