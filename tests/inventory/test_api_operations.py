"""POST receipts, adjustments and counts: role and location checked, idempotent, never a 500."""

import pytest

from inventory.models import MovementReason, StockLevel, StockMovement
from omni.roles import Role
from tests.factories import LocationFactory, UserFactory, VariantFactory

pytestmark = pytest.mark.django_db
RECEIPTS = "/api/v1/stock/receipts/"
ADJUSTMENTS = "/api/v1/stock/adjustments/"
COUNTS = "/api/v1/stock/counts/"


def on_hand(location, variant):
    level = StockLevel.objects.filter(location=location, variant=variant).first()
    return level.on_hand if level else 0


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code, body
    assert body["message"]
    return body


# --- Receipts ----------------------------------------------------------------------------------


def test_associate_receives_at_their_store(store, associate, api_client_for):
    variant = VariantFactory(sku="TEE-1")

    response = api_client_for(associate).post(
        RECEIPTS, {"location": "aus-1", "sku": "TEE-1", "quantity": 6, "reference": "PO-7"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["duplicate"] is False
    assert body["level"]["on_hand"] == 6
    assert body["level"]["available"] == 6
    assert [(m["state"], m["quantity"], m["reason"]) for m in body["movements"]] == [("on_hand", 6, "receipt")]
    movement = StockMovement.objects.get()
    assert (movement.actor, movement.reference_type, movement.reference_id) == (associate, "receipt", "PO-7")
    assert on_hand(store, variant) == 6


def test_receipt_by_barcode(store, associate, api_client_for):
    variant = VariantFactory()

    response = api_client_for(associate).post(
        RECEIPTS, {"location": "aus-1", "barcode": variant.barcode, "quantity": 2}, format="json"
    )

    assert response.status_code == 201
    assert on_hand(store, variant) == 2


def test_receipt_with_the_same_idempotency_key_twice_has_one_effect(store, associate, api_client_for):
    variant = VariantFactory()
    client = api_client_for(associate)
    payload = {"location": "aus-1", "sku": variant.sku, "quantity": 3}

    first = client.post(RECEIPTS, payload, format="json", HTTP_IDEMPOTENCY_KEY="scan-42")
    second = client.post(RECEIPTS, payload, format="json", HTTP_IDEMPOTENCY_KEY="scan-42")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True
    assert second.json()["operation_key"] == first.json()["operation_key"]
    assert on_hand(store, variant) == 3
    assert StockMovement.objects.count() == 1


def test_reusing_a_key_for_a_different_receipt_is_a_conflict(store, associate, api_client_for):
    variant = VariantFactory()
    client = api_client_for(associate)
    client.post(
        RECEIPTS, {"location": "aus-1", "sku": variant.sku, "quantity": 3}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )

    response = client.post(
        RECEIPTS, {"location": "aus-1", "sku": variant.sku, "quantity": 4}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )

    assert_error(response, 409, "idempotency_key_reused")
    assert on_hand(store, variant) == 3


def test_the_same_key_on_another_endpoint_is_a_separate_operation(store, manager, api_client_for):
    variant = VariantFactory()
    client = api_client_for(manager)
    client.post(
        RECEIPTS, {"location": "aus-1", "sku": variant.sku, "quantity": 3}, format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )

    response = client.post(
        ADJUSTMENTS,
        {"location": "aus-1", "sku": variant.sku, "delta": -1, "reason_code": "shrinkage"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k2",
    )

    assert response.status_code == 201
    assert on_hand(store, variant) == 2


def test_a_malformed_idempotency_key_is_refused(store, associate, api_client_for):
    variant = VariantFactory()

    response = api_client_for(associate).post(
        RECEIPTS, {"location": "aus-1", "sku": variant.sku, "quantity": 1}, format="json", HTTP_IDEMPOTENCY_KEY="a b"
    )

    assert_error(response, 400, "invalid_idempotency_key")
    assert StockMovement.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -2}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": "many"}, "quantity"),
        ({"quantity": 10**9}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"location": ""}, "location"),
    ],
)
def test_bad_receipt_input_is_400_and_writes_nothing(store, associate, api_client_for, payload, field):
    variant = VariantFactory()
    data = {"location": "aus-1", "sku": variant.sku, "quantity": 1, **payload}

    response = api_client_for(associate).post(RECEIPTS, data, format="json")

    body = assert_error(response, 400, "invalid")
    assert field in body["extra"]["fields"]
    assert StockMovement.objects.count() == 0


def test_barcode_with_a_wrong_check_digit_is_400(store, associate, api_client_for):
    response = api_client_for(associate).post(
        RECEIPTS, {"location": "aus-1", "barcode": "4006381333932", "quantity": 1}, format="json"
    )

    body = assert_error(response, 400, "invalid")
    assert "check digit" in body["message"]


def test_sku_and_barcode_together_is_400(store, associate, api_client_for):
    variant = VariantFactory()

    response = api_client_for(associate).post(
        RECEIPTS, {"location": "aus-1", "sku": variant.sku, "barcode": variant.barcode, "quantity": 1}, format="json"
    )

    assert_error(response, 400, "invalid")


def test_unknown_sku_is_404(store, associate, api_client_for):
    response = api_client_for(associate).post(
        RECEIPTS, {"location": "aus-1", "sku": "NOPE", "quantity": 1}, format="json"
    )

    assert_error(response, 404, "unknown_variant")
    assert StockMovement.objects.count() == 0


def test_unknown_location_is_404(store, admin_user, api_client_for):
    variant = VariantFactory()

    response = api_client_for(admin_user).post(
        RECEIPTS, {"location": "nowhere", "sku": variant.sku, "quantity": 1}, format="json"
    )

    assert_error(response, 404, "unknown_location")


def test_nobody_receives_at_another_location(store, other_store, associate, api_client_for):
    variant = VariantFactory()

    response = api_client_for(associate).post(
        RECEIPTS, {"location": "aus-2", "sku": variant.sku, "quantity": 1}, format="json"
    )

    assert_error(response, 403, "forbidden_location")
    assert StockMovement.objects.count() == 0


def test_an_extra_location_may_be_acted_for(store, other_store, associate, api_client_for):
    associate.extra_locations.add(other_store)
    variant = VariantFactory()

    response = api_client_for(associate).post(
        RECEIPTS, {"location": "aus-2", "sku": variant.sku, "quantity": 1}, format="json"
    )

    assert response.status_code == 201
    assert on_hand(other_store, variant) == 1


def test_admin_receives_anywhere(store, other_store, admin_user, api_client_for):
    variant = VariantFactory()

    response = api_client_for(admin_user).post(
        RECEIPTS, {"location": "aus-2", "sku": variant.sku, "quantity": 1}, format="json"
    )

    assert response.status_code == 201


def test_receipt_at_an_inactive_location_is_refused(admin_user, api_client_for):
    LocationFactory(code="closed", is_active=False)
    variant = VariantFactory()

    response = api_client_for(admin_user).post(
        RECEIPTS, {"location": "closed", "sku": variant.sku, "quantity": 1}, format="json"
    )

    assert_error(response, 400, "location_unavailable")
    assert StockMovement.objects.count() == 0


def test_anonymous_cannot_receive(store, client):
    variant = VariantFactory()

    response = client.post(
        RECEIPTS, {"location": "aus-1", "sku": variant.sku, "quantity": 1}, content_type="application/json"
    )

    assert response.status_code in (401, 403)
    assert StockMovement.objects.count() == 0


def test_malformed_json_is_400_not_500(store, associate, api_client_for):
    response = api_client_for(associate).post(RECEIPTS, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert set(response.json()) == {"code", "message", "extra"}


# --- Adjustments -------------------------------------------------------------------------------


def test_manager_adjusts_with_a_reason_code(store, manager, api_client_for, stock):
    variant = VariantFactory()
    stock(store, variant, 5)

    response = api_client_for(manager).post(
        ADJUSTMENTS,
        {"location": "aus-1", "sku": variant.sku, "delta": -2, "reason_code": "shrinkage", "note": "torn box"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["level"]["on_hand"] == 3
    movement = StockMovement.objects.filter(reason=MovementReason.ADJUSTMENT).get()
    assert (movement.quantity, movement.reason_code, movement.note, movement.actor) == (
        -2,
        "shrinkage",
        "torn box",
        manager,
    )


def test_associate_may_not_adjust(store, associate, api_client_for, stock):
    variant = VariantFactory()
    stock(store, variant, 5)

    response = api_client_for(associate).post(
        ADJUSTMENTS, {"location": "aus-1", "sku": variant.sku, "delta": -1, "reason_code": "shrinkage"}, format="json"
    )

    assert_error(response, 403, "forbidden_role")
    assert on_hand(store, variant) == 5


def test_warehouse_operator_may_not_adjust(warehouse, warehouse_operator, api_client_for):
    variant = VariantFactory()

    response = api_client_for(warehouse_operator).post(
        ADJUSTMENTS, {"location": "wh-1", "sku": variant.sku, "delta": 1, "reason_code": "found"}, format="json"
    )

    assert_error(response, 403, "forbidden_role")


def test_manager_may_not_adjust_another_store(store, other_store, manager, api_client_for, stock):
    variant = VariantFactory()
    stock(other_store, variant, 5)

    response = api_client_for(manager).post(
        ADJUSTMENTS, {"location": "aus-2", "sku": variant.sku, "delta": -1, "reason_code": "shrinkage"}, format="json"
    )

    assert_error(response, 403, "forbidden_location")
    assert on_hand(other_store, variant) == 5


@pytest.mark.parametrize(
    "payload",
    [
        {"delta": 0, "reason_code": "shrinkage"},
        {"delta": -1},
        {"delta": -1, "reason_code": ""},
        {"delta": -1, "reason_code": "because"},
        {"delta": "x", "reason_code": "shrinkage"},
        {"delta": 3, "reason_code": "shrinkage"},  # a loss cannot add stock
        {"delta": -3, "reason_code": "found"},
    ],
)
def test_bad_adjustment_is_400_and_writes_nothing(store, manager, api_client_for, stock, payload):
    variant = VariantFactory()
    stock(store, variant, 5)

    response = api_client_for(manager).post(
        ADJUSTMENTS, {"location": "aus-1", "sku": variant.sku, **payload}, format="json"
    )

    assert_error(response, 400, "invalid")
    assert StockMovement.objects.count() == 1


def test_adjustment_cannot_take_away_promised_stock(store, manager, api_client_for, stock):
    from inventory import services

    variant = VariantFactory()
    stock(store, variant, 5)
    services.stock_reserve(actor=manager, location_id=store.pk, variant_id=variant.pk, quantity=4)

    response = api_client_for(manager).post(
        ADJUSTMENTS, {"location": "aus-1", "sku": variant.sku, "delta": -2, "reason_code": "shrinkage"}, format="json"
    )

    body = assert_error(response, 409, "insufficient_stock")
    assert body["extra"]["sku"] == variant.sku
    assert on_hand(store, variant) == 5
    assert not StockMovement.objects.filter(reason=MovementReason.ADJUSTMENT).exists()


def test_overdraw_of_an_unknown_level_is_409(store, manager, api_client_for):
    variant = VariantFactory()

    response = api_client_for(manager).post(
        ADJUSTMENTS, {"location": "aus-1", "sku": variant.sku, "delta": -1, "reason_code": "shrinkage"}, format="json"
    )

    assert_error(response, 409, "insufficient_stock")
    assert StockMovement.objects.count() == 0


# --- Counts ------------------------------------------------------------------------------------


def test_manager_counts_and_gets_variances(store, manager, api_client_for, stock):
    shirt, socks, cap = VariantFactory(sku="SHIRT"), VariantFactory(sku="SOCKS"), VariantFactory(sku="CAP")
    stock(store, shirt, 5)
    stock(store, socks, 2)
    StockLevel.objects.filter(location=store, variant=socks).update(needs_count=True)

    response = api_client_for(manager).post(
        COUNTS,
        {
            "location": "aus-1",
            "lines": [
                {"sku": "SHIRT", "counted": 3},
                {"barcode": socks.barcode, "counted": 2},
                {"sku": "CAP", "counted": 1},
            ],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["lines"] == [
        {"sku": "SHIRT", "expected": 5, "counted": 3, "variance": -2},
        {"sku": "SOCKS", "expected": 2, "counted": 2, "variance": 0},
        {"sku": "CAP", "expected": 0, "counted": 1, "variance": 1},
    ]
    assert body["total_variance"] == -1
    assert (on_hand(store, shirt), on_hand(store, socks), on_hand(store, cap)) == (3, 2, 1)
    assert not StockLevel.objects.get(location=store, variant=socks).needs_count
    assert StockMovement.objects.filter(reason=MovementReason.COUNT).count() == 2


def test_count_replayed_with_the_same_key_changes_nothing_more(store, manager, api_client_for, stock):
    variant = VariantFactory()
    stock(store, variant, 5)
    client = api_client_for(manager)
    payload = {"location": "aus-1", "lines": [{"sku": variant.sku, "counted": 4}]}

    first = client.post(COUNTS, payload, format="json", HTTP_IDEMPOTENCY_KEY="count-1")
    second = client.post(COUNTS, payload, format="json", HTTP_IDEMPOTENCY_KEY="count-1")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["lines"] == first.json()["lines"]
    assert on_hand(store, variant) == 4
    assert StockMovement.objects.filter(reason=MovementReason.COUNT).count() == 1


@pytest.mark.parametrize(
    ("lines", "status", "code"),
    [
        ([], 400, "invalid"),
        ([{"sku": "A", "counted": -1}], 400, "invalid"),
        ([{"counted": 1}], 400, "invalid"),
        ("nope", 400, "invalid"),
        ([{"sku": "NOPE", "counted": 1}], 404, "unknown_variant"),
        ([{"sku": "A", "counted": 1}, {"sku": "A", "counted": 2}], 400, "duplicate_line"),
    ],
)
def test_bad_count_is_refused_and_writes_nothing(store, manager, api_client_for, stock, lines, status, code):
    variant = VariantFactory(sku="A")
    stock(store, variant, 5)

    response = api_client_for(manager).post(COUNTS, {"location": "aus-1", "lines": lines}, format="json")

    assert_error(response, status, code)
    assert on_hand(store, variant) == 5
    assert StockMovement.objects.count() == 1


def test_count_below_what_is_promised_is_409_and_writes_nothing(store, manager, api_client_for, stock):
    from inventory import services

    variant, other = VariantFactory(), VariantFactory()
    stock(store, variant, 5)
    stock(store, other, 5)
    services.stock_reserve(actor=manager, location_id=store.pk, variant_id=variant.pk, quantity=3)

    response = api_client_for(manager).post(
        COUNTS,
        {"location": "aus-1", "lines": [{"sku": other.sku, "counted": 1}, {"sku": variant.sku, "counted": 2}]},
        format="json",
    )

    assert_error(response, 409, "insufficient_stock")
    assert (on_hand(store, variant), on_hand(store, other)) == (5, 5)
    assert not StockMovement.objects.filter(reason=MovementReason.COUNT).exists()


def test_associate_may_not_count(store, associate, api_client_for):
    variant = VariantFactory()

    response = api_client_for(associate).post(
        COUNTS, {"location": "aus-1", "lines": [{"sku": variant.sku, "counted": 1}]}, format="json"
    )

    assert_error(response, 403, "forbidden_role")


def test_manager_may_not_count_another_store(store, other_store, manager, api_client_for):
    variant = VariantFactory()

    response = api_client_for(manager).post(
        COUNTS, {"location": "aus-2", "lines": [{"sku": variant.sku, "counted": 1}]}, format="json"
    )

    assert_error(response, 403, "forbidden_location")
    assert StockMovement.objects.count() == 0


def test_a_manager_with_two_roles_counts_at_an_extra_location(store, other_store, api_client_for):
    person = UserFactory(role=[Role.MANAGER, Role.ASSOCIATE], home_location=store)
    person.extra_locations.add(other_store)
    variant = VariantFactory()

    response = api_client_for(person).post(
        COUNTS, {"location": "aus-2", "lines": [{"sku": variant.sku, "counted": 2}]}, format="json"
    )

    assert response.status_code == 201
    assert on_hand(other_store, variant) == 2
