"""The customers API under /api/v1/customers/: roles, errors, and the OpenAPI schema."""

import pytest

from customers import services
from customers.models import Customer, CustomerMerge
from tests.factories.customers import SYSTEM, make_customer

pytestmark = pytest.mark.django_db

BASE = "/api/v1/customers/"


def test_search_by_phone_email_name_and_card(api_client_for, associate):
    ana = make_customer(name="Ana López", email="ana@example.com", phone="5125550142", loyalty_card="OMNI12345")
    api = api_client_for(associate)

    for query in ["512-555-01", "ana@exa", "lopez", "omni1234"]:
        response = api.get(BASE, {"q": query})
        assert response.status_code == 200, query
        assert [row["id"] for row in response.json()] == [ana.pk], query
    assert response.json()[0]["phone"] == "+15125550142"


def test_create_validates_and_reports_fields(api_client_for, associate, store):
    api = api_client_for(associate)

    bad = api.post(BASE, {"name": "Bo", "phone": "123"}, format="json")
    good = api.post(BASE, {"name": "Bo", "phone": "(512) 555-0101", "sms_consent": True}, format="json")

    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_customer"
    assert bad.json()["extra"]["fields"] == {"phone": "Enter a valid phone number."}
    assert good.status_code == 201
    body = good.json()
    assert (body["phone"], body["sms_consent"], body["email_consent"]) == ("+15125550101", True, False)
    assert Customer.objects.get(pk=body["id"]).created_at_location_id == store.pk


def test_create_with_a_known_email_is_a_conflict_naming_the_existing_record(api_client_for, associate):
    existing = make_customer(email="dup@example.com")

    response = api_client_for(associate).post(BASE, {"name": "X", "email": "DUP@example.com"}, format="json")

    assert response.status_code == 409
    assert response.json()["extra"] == {"existing_customer_id": existing.pk}


def test_create_at_a_location_the_user_cannot_act_for_is_forbidden(api_client_for, associate, other_store):
    response = api_client_for(associate).post(
        BASE, {"name": "X", "phone": "5125550102", "location_id": other_store.pk}, format="json"
    )

    assert response.status_code == 403
    assert not Customer.objects.exists()


def test_update_and_read_back(api_client_for, associate):
    customer = make_customer()
    api = api_client_for(associate)

    response = api.patch(
        f"{BASE}{customer.pk}/",
        {"size_dresses": "10", "interest_brands": ["Contoso"], "birthday": "1990-02-03"},
        format="json",
    )

    assert response.status_code == 200
    body = api.get(f"{BASE}{customer.pk}/").json()
    assert (body["size_dresses"], body["interest_brands"], body["birthday"]) == ("10", ["Contoso"], "1990-02-03")


def test_consent_endpoint_records_history(api_client_for, associate):
    customer = make_customer()
    api = api_client_for(associate)

    first = api.post(f"{BASE}{customer.pk}/consents/", {"channel": "email", "granted": True}, format="json")
    again = api.post(f"{BASE}{customer.pk}/consents/", {"channel": "email", "granted": True}, format="json")

    assert first.json()["changed"] is True
    assert again.json()["changed"] is False
    assert customer.consent_events.count() == 1


def test_loyalty_endpoint(api_client_for, associate):
    customer = make_customer()
    services.loyalty_earn(customer_id=customer.pk, amount="25", order_ref="SO-1", idempotency_key="k", actor=SYSTEM)

    body = api_client_for(associate).get(f"{BASE}{customer.pk}/loyalty/").json()

    assert (body["balance"], body["value"], body["tier_code"]) == (25, "0.25", "member")
    assert body["entries"][0]["points"] == 25


def test_merge_export_erase_are_for_managers(api_client_for, associate, manager):
    a, b = make_customer(), make_customer(name="Keep Me")
    as_associate, as_manager = api_client_for(associate), api_client_for(manager)

    assert as_associate.post(f"{BASE}merge/", {"source_id": a.pk, "target_id": b.pk}, format="json").status_code == 403
    assert as_associate.get(f"{BASE}{b.pk}/export/").status_code == 403
    assert as_associate.post(f"{BASE}{b.pk}/erase/", {"confirm": True}, format="json").status_code == 403
    assert as_associate.get(f"{BASE}match-reviews/").status_code == 403

    merged = as_manager.post(f"{BASE}merge/", {"source_id": a.pk, "target_id": b.pk}, format="json")
    exported = as_manager.get(f"{BASE}{b.pk}/export/")
    unconfirmed = as_manager.post(f"{BASE}{b.pk}/erase/", {"confirm": False}, format="json")
    erased = as_manager.post(f"{BASE}{b.pk}/erase/", {"confirm": True}, format="json")

    assert merged.status_code == 201
    assert merged.json()["actor"] == "manager"
    assert CustomerMerge.objects.get().actor == manager
    assert exported.json()["customer"]["name"] == "Keep Me"
    assert exported["Cache-Control"] == "no-store"
    assert unconfirmed.status_code == 400
    assert erased.status_code == 200
    assert (erased.json()["status"], erased.json()["name"]) == ("erased", "")


def test_match_reviews_list_and_dismiss(api_client_for, manager):
    make_customer(email="a@example.com", phone="5125550142")
    result = services.customer_find_or_create(actor=SYSTEM, email="b@example.com", phone="5125550142")
    api = api_client_for(manager)

    listed = api.get(f"{BASE}match-reviews/").json()
    dismissed = api.post(f"{BASE}match-reviews/{result.review_ids[0]}/dismiss/")
    twice = api.post(f"{BASE}match-reviews/{result.review_ids[0]}/dismiss/")

    assert [row["reason"] for row in listed] == ["same_phone_other_email"]
    assert dismissed.json()["status"] == "dismissed"
    assert twice.status_code == 409
    assert [row["status"] for row in api.get(f"{BASE}match-reviews/", {"status": "dismissed"}).json()] == ["dismissed"]
    unknown = api.get(f"{BASE}match-reviews/", {"status": "AAA"})
    assert (unknown.status_code, unknown.json()["extra"]["fields"]) == (
        400,
        {"status": ["One of: open, merged, dismissed."]},
    )


def test_merging_into_itself_is_a_clear_409(api_client_for, manager):
    a = make_customer()

    response = api_client_for(manager).post(f"{BASE}merge/", {"source_id": a.pk, "target_id": a.pk}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "merge_not_allowed"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "?q=ana"),
        ("post", ""),
        ("get", "{id}/"),
        ("patch", "{id}/"),
        ("get", "{id}/loyalty/"),
        ("post", "{id}/consents/"),
    ],
)
def test_warehouse_operators_never_get_personal_data(api_client_for, warehouse_operator, method, path):
    customer = make_customer(name="Ana Private")

    response = getattr(api_client_for(warehouse_operator), method)(
        BASE + path.format(id=customer.pk), {}, format="json"
    )

    assert response.status_code == 403
    assert "Ana Private" not in response.content.decode()


def test_unknown_customer_is_404(api_client_for, associate):
    response = api_client_for(associate).get(f"{BASE}999999/")

    assert response.status_code == 404
    assert response.json()["code"] == "customer_not_found"


def test_operations_are_in_the_openapi_schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    schema = response.json() if response["Content-Type"].startswith("application/vnd.oai.openapi+json") else None
    if schema is None:
        import yaml

        schema = yaml.safe_load(response.content)
    operations = {
        op["operationId"] for path in schema["paths"].values() for op in path.values() if isinstance(op, dict)
    }
    assert {
        "customers_search",
        "customers_create",
        "customers_get",
        "customers_update",
        "customers_consent",
        "customers_loyalty",
        "customers_reviews",
        "customers_review_dismiss",
        "customers_merge",
        "customers_export",
        "customers_erase",
    } <= operations
    assert "/api/v1/customers/{customer_id}/erase/" in schema["paths"]
