"""/api/v1/transfers/: list, detail, approve, dispatch, receive; role- and location-checked, in the schema."""

import pytest
import yaml

from tests.factories import UserFactory, VariantFactory
from tests.factories.transfers import SYSTEM, assert_ledger_matches_levels, level, put_stock
from transfers import services
from transfers.models import TransferStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def proposal(warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    return services.transfer_create(
        actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(variant.pk, 4)], reason="low"
    )


def test_list_shows_only_transfers_of_my_locations(api_client_for, associate, other_manager, proposal):
    mine = api_client_for(associate).get("/api/v1/transfers/")
    theirs = api_client_for(other_manager).get("/api/v1/transfers/")

    assert mine.status_code == 200
    assert [row["code"] for row in mine.json()] == [proposal.code]
    assert mine.json()[0]["units"] == 4
    assert mine.json()[0]["origin"]["code"] == "wh-1"
    assert theirs.json() == []


def test_list_filters_by_direction_and_status(api_client_for, warehouse_operator, proposal):
    client = api_client_for(warehouse_operator)

    outgoing = client.get("/api/v1/transfers/?location=wh-1&direction=outgoing&status=proposed")
    incoming = client.get("/api/v1/transfers/?location=wh-1&direction=incoming")
    bad = client.get("/api/v1/transfers/?status=lost")

    assert [row["id"] for row in outgoing.json()] == [proposal.pk]
    assert incoming.json() == []
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"


def test_list_costs_a_fixed_number_of_queries(api_client_for, admin_user, warehouse, store, django_assert_num_queries):
    variant = VariantFactory()
    put_stock(warehouse, variant, 50)
    for _ in range(5):
        services.transfer_create(actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(variant.pk, 1)])
    client = api_client_for(admin_user)

    with django_assert_num_queries(3):  # token + user, the user's groups, the transfers
        response = client.get("/api/v1/transfers/")

    assert len(response.json()) == 5


def test_detail_has_lines_why_and_timeline(api_client_for, associate, proposal):
    response = api_client_for(associate).get(f"/api/v1/transfers/{proposal.pk}/")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "proposed"
    assert body["lines"][0]["quantity"] == 4
    assert body["events"][0]["kind"] == "created"
    assert body["plan_run"] is None


def test_detail_of_another_stores_transfer_is_forbidden(api_client_for, other_manager, proposal):
    response = api_client_for(other_manager).get(f"/api/v1/transfers/{proposal.pk}/")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_location"


def test_missing_transfer_is_404(api_client_for, admin_user):
    response = api_client_for(admin_user).get("/api/v1/transfers/999999/")

    assert response.status_code == 404
    assert response.json()["code"] == "transfer_not_found"


def test_only_managers_approve(api_client_for, associate, manager, warehouse, proposal):
    denied = api_client_for(associate).post(f"/api/v1/transfers/{proposal.pk}/approve/")
    approved = api_client_for(manager).post(f"/api/v1/transfers/{proposal.pk}/approve/")

    assert denied.status_code == 403
    assert denied.json()["code"] == "forbidden_role"
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert level(warehouse, proposal.lines.get().variant).reserved == 4


def test_approve_without_stock_is_a_409_naming_what_is_available(api_client_for, manager, warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 1)
    transfer = services.transfer_create(
        actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(variant.pk, 4)]
    )

    response = api_client_for(manager).post(f"/api/v1/transfers/{transfer.pk}/approve/")

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert response.json()["extra"]["available"] == 1


def test_dispatch_is_for_origin_staff_and_receive_for_destination_staff(
    api_client_for, manager, associate, warehouse_operator, warehouse, store, proposal
):
    services.transfer_approve(actor=SYSTEM, transfer_id=proposal.pk)
    line = proposal.lines.get()

    wrong_side = api_client_for(associate).post(f"/api/v1/transfers/{proposal.pk}/dispatch/", {}, format="json")
    dispatched = api_client_for(warehouse_operator).post(
        f"/api/v1/transfers/{proposal.pk}/dispatch/", {"lines": [{"line_id": line.pk, "quantity": 4}]}, format="json"
    )
    not_at_destination = api_client_for(warehouse_operator).post(
        f"/api/v1/transfers/{proposal.pk}/receive/", {}, format="json"
    )
    received = api_client_for(associate).post(
        f"/api/v1/transfers/{proposal.pk}/receive/", {"lines": [{"line_id": line.pk, "quantity": 3}]}, format="json"
    )

    assert wrong_side.status_code == 403
    assert dispatched.status_code == 200
    assert dispatched.json()["status"] == "in_transit"
    assert not_at_destination.status_code == 403
    assert received.status_code == 200
    assert received.json()["status"] == TransferStatus.DISCREPANCY
    assert received.json()["has_discrepancy"] is True
    assert level(store, line.variant).on_hand == 3
    assert_ledger_matches_levels()


def test_receive_without_lines_books_as_dispatched(api_client_for, associate, warehouse_operator, store, proposal):
    services.transfer_approve(actor=SYSTEM, transfer_id=proposal.pk)
    api_client_for(warehouse_operator).post(f"/api/v1/transfers/{proposal.pk}/dispatch/", {}, format="json")

    response = api_client_for(associate).post(f"/api/v1/transfers/{proposal.pk}/receive/", {}, format="json")

    assert response.json()["status"] == "received"
    assert level(store, proposal.lines.get().variant).on_hand == 4


def test_bad_input_is_a_400_and_changes_nothing(api_client_for, warehouse_operator, warehouse, proposal):
    services.transfer_approve(actor=SYSTEM, transfer_id=proposal.pk)
    client = api_client_for(warehouse_operator)
    line = proposal.lines.get()

    negative = client.post(
        f"/api/v1/transfers/{proposal.pk}/dispatch/", {"lines": [{"line_id": line.pk, "quantity": -1}]}, format="json"
    )
    too_many = client.post(
        f"/api/v1/transfers/{proposal.pk}/dispatch/", {"lines": [{"line_id": line.pk, "quantity": 9}]}, format="json"
    )
    unknown = client.post(
        f"/api/v1/transfers/{proposal.pk}/dispatch/", {"lines": [{"line_id": 99999, "quantity": 1}]}, format="json"
    )

    assert (negative.status_code, too_many.status_code, unknown.status_code) == (400, 400, 400)
    assert too_many.json()["code"] == "invalid_transfer"
    proposal.refresh_from_db()
    assert proposal.status == TransferStatus.APPROVED
    assert level(warehouse, line.variant).on_hand == 10


def test_dispatching_twice_is_a_409(api_client_for, warehouse_operator, proposal):
    services.transfer_approve(actor=SYSTEM, transfer_id=proposal.pk)
    client = api_client_for(warehouse_operator)
    client.post(f"/api/v1/transfers/{proposal.pk}/dispatch/", {}, format="json")

    again = client.post(f"/api/v1/transfers/{proposal.pk}/dispatch/", {}, format="json")

    assert again.status_code == 409
    assert again.json()["code"] == "transfer_wrong_state"


def test_manager_can_reject_and_cancel(api_client_for, manager, warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    one, two = (
        services.transfer_create(actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(variant.pk, 2)])
        for _ in range(2)
    )
    services.transfer_approve(actor=SYSTEM, transfer_id=two.pk)
    client = api_client_for(manager)

    rejected = client.post(f"/api/v1/transfers/{one.pk}/reject/", {"note": "not needed"}, format="json")
    cancelled = client.post(f"/api/v1/transfers/{two.pk}/cancel/", {}, format="json")

    assert rejected.json()["status"] == cancelled.json()["status"] == "cancelled"
    assert level(warehouse, variant).reserved == 0


def test_unauthenticated_and_roleless_are_refused(client, proposal):
    nobody = UserFactory(username="nobody")
    from rest_framework.test import APIClient

    anonymous = client.get("/api/v1/transfers/")
    api = APIClient()
    api.force_authenticate(nobody)
    roleless = api.get("/api/v1/transfers/")

    assert anonymous.status_code in (401, 403)
    assert roleless.status_code == 403


def test_endpoints_are_in_the_openapi_schema(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)

    paths = schema["paths"]
    for path in (
        "/api/v1/transfers/",
        "/api/v1/transfers/{transfer_id}/",
        "/api/v1/transfers/{transfer_id}/approve/",
        "/api/v1/transfers/{transfer_id}/dispatch/",
        "/api/v1/transfers/{transfer_id}/receive/",
    ):
        assert path in paths, path
    assert "TransferDetailOutput" in schema["components"]["schemas"]
