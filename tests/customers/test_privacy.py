"""Privacy: export everything held about a customer; erase personal data but keep sales; never log it."""

import json
import logging
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from customers import privacy, selectors, services
from customers.errors import CustomerInactiveError
from customers.models import (
    ConsentEvent,
    Customer,
    CustomerAddress,
    CustomerIdentity,
    CustomerPurchase,
    LoyaltyEntry,
    MatchReview,
)
from tests.factories.customers import SYSTEM, make_customer, record_purchase

pytestmark = pytest.mark.django_db

NAME, EMAIL, PHONE = "Zelda Quixote-Marchbanks", "zelda.qm@example.org", "+15125550199"
OTHER_EMAIL, OTHER_PHONE = "zq.old@example.net", "+15125550188"
NEEDLES = ["zelda", "quixote", "marchbanks", "zelda.qm", "zq.old", "5125550199", "5125550188", "555-0199"]


@pytest.fixture
def rich_customer(manager, store):
    """A customer with personal data everywhere customers can hold it, merged from a second record."""
    customer = services.customer_create(
        actor=manager,
        name=NAME,
        email=EMAIL,
        phone=PHONE,
        email_consent=True,
        sms_consent=True,
        consent_note="Zelda signed on paper",
        loyalty_card="ZQ123456",
        online_customer_id=555001,
        details={
            "birthday": "1980-05-17",
            "anniversary": "2005-06-01",
            "notes": "Zelda prefers muted colours",
            "size_tops": "S",
            "interest_brands": ["Northwind"],
            "preferred_store_id": store.pk,
        },
        location_id=store.pk,
    )
    services.customer_address_add(
        customer_id=customer.pk, actor=manager, line1="1 Quixote Lane", city="Austin", label="Zelda home"
    )
    services.customer_update(customer_id=customer.pk, actor=manager, changes={"name": NAME + " "})
    old = make_customer(name="Zelda Q", email=OTHER_EMAIL, phone=OTHER_PHONE)
    lucia = make_customer(name="Lucia Ortega", email="lucia@example.org", phone="+15125550177")
    # Email says Zelda, phone says Lucia: a review between the two, nothing copied across.
    services.customer_find_or_create(actor=SYSTEM, email=EMAIL, phone=lucia.phone)
    record_purchase(customer, amount="120.00", lines=[(None, "Northwind", "tops", 2, "120.00")], order_ref="SO-77")
    services.loyalty_earn(
        customer_id=customer.pk, amount=Decimal("120"), order_ref="SO-77", idempotency_key="e77", actor=SYSTEM
    )
    services.loyalty_adjust(customer_id=customer.pk, points=5, note="Sorry Zelda", idempotency_key="adj", actor=manager)
    services.customer_merge(source_id=old.pk, target_id=customer.pk, actor=manager)
    customer.refresh_from_db()
    return customer


def test_export_holds_everything_about_the_customer(rich_customer, manager):
    data = services.customer_export(customer_id=rich_customer.pk, actor=manager)

    json.dumps(data)  # JSON-ready as is
    assert data["customer"]["email"] == EMAIL
    assert data["customer"]["birthday"] == "1980-05-17"
    assert data["merged_records"][0]["name"] == "Zelda Q"
    assert {(i["kind"], i["value"]) for i in data["identities"]} >= {
        ("loyalty_card", "ZQ123456"),
        ("online_store", "555001"),
        ("email", OTHER_EMAIL),
    }
    assert data["addresses"][0]["line1"] == "1 Quixote Lane"
    assert [(c["channel"], c["granted"]) for c in data["consent_history"]] == [("email", True), ("sms", True)]
    assert data["loyalty"]["balance"] == 125
    assert data["purchases"][0]["items"][0]["brand"] == "Northwind"
    assert "exported" not in [h["kind"] for h in data["history"]]
    assert rich_customer.events.filter(kind="exported").count() == 1


def test_export_includes_sections_registered_by_higher_apps(rich_customer, manager, monkeypatch):
    monkeypatch.setattr(privacy, "_export_sections", {"orders": lambda *, customer_ids: {"ids": customer_ids}})

    data = services.customer_export(customer_id=rich_customer.pk, actor=manager)

    assert data["sections"]["orders"]["ids"] == selectors.customer_history_ids(customer_id=rich_customer.pk)


def test_erase_anonymises_the_customer_and_keeps_sales_and_points(rich_customer, manager):
    erased = services.customer_erase(customer_id=rich_customer.pk, actor=manager)

    assert erased.status == "erased"
    assert (erased.name, erased.email, erased.phone, erased.notes) == ("", "", "", "")
    assert (erased.birthday, erased.anniversary, erased.preferred_store_id) == (None, None, None)
    assert erased.display_name == "Erased customer"
    assert not CustomerIdentity.objects.exists()
    assert not CustomerAddress.objects.exists()
    assert CustomerPurchase.objects.get(order_ref="SO-77").amount == Decimal("120.00")
    assert erased.lifetime_spend == Decimal("120.00")
    assert sum(LoyaltyEntry.objects.values_list("points", flat=True)) == 125
    assert set(ConsentEvent.objects.values_list("note", flat=True)) == {""}
    assert (erased.email_consent, erased.sms_consent) == (False, False)
    assert not MatchReview.objects.filter(status="open", customer=erased).exists()
    assert selectors.customer_search(query="zelda") == []
    assert selectors.customer_search(query="lucia")[0].name == "Lucia Ortega"


SCAN_SQL = (
    "SELECT n FROM unnest(%s::text[]) AS n WHERE EXISTS "
    "(SELECT 1 FROM {table} WHERE {column}::text ILIKE '%%' || n || '%%')"
)


def _columns():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() "
            "AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        )
        return cursor.fetchall()


def test_an_erased_customers_name_email_and_phone_appear_nowhere_in_the_database(rich_customer, manager):
    if connection.vendor != "postgresql":
        pytest.skip("scans information_schema on PostgreSQL")
    columns = _columns()
    qn = connection.ops.quote_name

    def scan(needles):
        """{needle: ["table.column", ...]} for every text/JSON column of every table."""
        found = {needle: [] for needle in needles}
        with connection.cursor() as cursor:
            for table, column in columns:
                # Identifiers come from information_schema and are quoted; values are parameters.
                cursor.execute(SCAN_SQL.format(table=qn(table), column=qn(column)), [list(needles)])
                for (needle,) in cursor.fetchall():
                    found[needle].append(f"{table}.{column}")
        return found

    def hits(needle):
        return scan([needle])[needle]

    # The fixture put the data in; the scan is able to find it.
    assert "customers_customer.email" in hits("zelda.qm")
    assert "customers_consentevent.note" in hits("zelda")

    services.customer_erase(customer_id=rich_customer.pk, actor=manager)

    leftovers = scan(NEEDLES)
    assert leftovers == {needle: [] for needle in NEEDLES}
    # The other person in the review keeps their record.
    assert Customer.objects.filter(email="lucia@example.org", status="active").exists()


def test_erasing_twice_is_harmless_and_a_merged_record_points_at_the_survivor(rich_customer, manager):
    merged_id = rich_customer.merged_sources.get().pk
    services.customer_erase(customer_id=rich_customer.pk, actor=manager)

    again = services.customer_erase(customer_id=rich_customer.pk, actor=manager)

    assert again.status == "erased"
    with pytest.raises(CustomerInactiveError):
        services.customer_erase(customer_id=merged_id, actor=manager)


def test_erasers_of_higher_apps_run_in_the_same_transaction(rich_customer, manager, monkeypatch):
    def failing_eraser(*, customer_ids, actor):
        raise RuntimeError("orders could not erase")

    monkeypatch.setattr(privacy, "_erasers", {"orders": failing_eraser})

    with pytest.raises(RuntimeError):
        services.customer_erase(customer_id=rich_customer.pk, actor=manager)

    rich_customer.refresh_from_db()
    assert (rich_customer.status, rich_customer.email) == ("active", EMAIL)


def test_personal_data_never_reaches_the_logs(caplog, manager, store):
    caplog.set_level(logging.DEBUG)

    customer = services.customer_create(actor=manager, name=NAME, email=EMAIL, phone=PHONE, location_id=store.pk)
    selectors.customer_search(query=EMAIL)
    selectors.customer_search(query="Zelda")
    selectors.customer_search(query="512 555 0199")
    services.customer_find_or_create(actor=SYSTEM, email=EMAIL, phone="bad phone 0199", strict=False)
    services.customer_update(customer_id=customer.pk, actor=manager, changes={"birthday": date(1980, 5, 17)})
    services.customer_export(customer_id=customer.pk, actor=manager)
    services.customer_erase(customer_id=customer.pk, actor=manager)

    assert caplog.records, "the services log what they do (ids only)"
    text = caplog.text.lower()
    for needle in [*NEEDLES, EMAIL, PHONE, "1980-05-17"]:
        assert needle.lower() not in text


def test_audit_rows_name_fields_not_values(manager):
    customer = make_customer(email="secret.person@example.com")

    services.customer_update(customer_id=customer.pk, actor=manager, changes={"email": "new.secret@example.com"})

    data = json.dumps(list(customer.events.values_list("data", flat=True)))
    assert "secret" not in data
    assert timezone.now()


def test_pages_and_api_do_not_log_personal_data(caplog, client, api_client_for, associate, manager):
    caplog.set_level(logging.DEBUG)
    client.force_login(associate)

    client.post("/customers/new/", {"name": NAME, "email": EMAIL, "phone": PHONE}, HTTP_HX_REQUEST="true")
    client.get("/customers/", {"q": EMAIL}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="customer-results")
    client.post("/customers/new/", {"name": NAME, "email": EMAIL, "phone": "bad 0199"}, HTTP_HX_REQUEST="true")
    api_client_for(associate).post("/api/v1/customers/", {"name": NAME, "email": EMAIL}, format="json")
    customer = Customer.objects.get(email=EMAIL)
    api_client_for(manager).post(f"/api/v1/customers/{customer.pk}/erase/", {"confirm": True}, format="json")

    text = caplog.text.lower()
    logged = {(r.name, r.getMessage()) for r in caplog.records}
    assert ("django.request", "Bad Request: /customers/new/") in logged
    assert ("django.request", "Conflict: /api/v1/customers/") in logged
    for needle in [*NEEDLES, EMAIL, PHONE]:
        assert needle.lower() not in text
