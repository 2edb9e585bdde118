"""Customers admin: changelists without a query per row; profile edits go through the service."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers import services
from customers.models import CustomerEvent
from tests.factories.customers import SYSTEM, make_customer, record_purchase

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "customer",
    "consentevent",
    "customerevent",
    "matchreview",
    "customermerge",
    "customerpurchase",
    "loyaltyaccount",
    "loyaltyentry",
]


def _populate(n, store):
    for _ in range(n):
        customer = make_customer(sms_consent=True, details={"preferred_store_id": store.pk})
        record_purchase(customer, amount="20", location_id=store.pk)
        services.loyalty_earn(
            customer_id=customer.pk,
            amount="20",
            order_ref=f"L{customer.pk}",
            idempotency_key=f"l{customer.pk}",
            actor=SYSTEM,
        )
        services.customer_find_or_create(actor=SYSTEM, email=f"other{customer.pk}@example.com", phone=customer.phone)


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx)


@pytest.mark.parametrize("model", CHANGELISTS)
def test_changelists_cost_the_same_whatever_the_number_of_rows(client, admin_user, store, model):
    client.force_login(admin_user)
    url = reverse(f"admin:customers_{model}_changelist")
    _populate(2, store)
    few = _queries(client, url)
    _populate(6, store)
    many = _queries(client, url)
    assert many == few


def test_admin_edit_goes_through_the_service_and_is_audited(client, admin_user):
    customer = make_customer(name="Old Name", email="old@example.com")
    client.force_login(admin_user)
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    form = {
        "name": "New Name", "email": "OLD@example.com", "phone": "(512) 555-0133", "birthday": "",
        "anniversary": "", "size_tops": "", "size_bottoms": "", "size_dresses": "", "size_shoes": "",
        "interest_brands": "[]", "interest_categories": "[]", "preferred_store": "", "notes": "",
        **{f"{prefix}-{k}": v for prefix in ("identities", "addresses", "consent_events")
           for k, v in {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0"}.items()},
    }  # fmt: skip

    response = client.post(url, form)

    errors = re.findall(r"<ul class=\"errorlist[^>]*>(.*?)</ul>", response.content.decode(), re.S)
    assert response.status_code == 302, errors
    customer.refresh_from_db()
    assert (customer.name, customer.name_search, customer.phone) == ("New Name", "new name", "+15125550133")
    event = CustomerEvent.objects.filter(customer=customer, kind="updated").get()
    assert event.actor == admin_user
    assert event.data == {"fields": ["name", "phone"]}


def test_admin_shows_service_errors_on_the_fields(client, admin_user):
    make_customer(email="taken@example.com")
    customer = make_customer()
    client.force_login(admin_user)
    form = {
        "name": "X", "email": "taken@example.com", "phone": "12", "interest_brands": "[]",
        "interest_categories": "[]",
        **{f"{prefix}-{k}": v for prefix in ("identities", "addresses", "consent_events")
           for k, v in {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0"}.items()},
    }  # fmt: skip

    response = client.post(reverse("admin:customers_customer_change", args=[customer.pk]), form)

    body = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid phone number." in body


def test_customers_cannot_be_deleted_in_the_admin(client, admin_user):
    customer = make_customer()
    client.force_login(admin_user)

    response = client.get(reverse("admin:customers_customer_delete", args=[customer.pk]))

    assert response.status_code == 403
