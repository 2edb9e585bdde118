"""Creating customers at the till: normalised contact details, explicit consent, clear errors."""

import pytest

from customers import services
from customers.errors import DuplicateEmailError, InvalidCustomerDataError
from customers.models import ConsentEvent, CustomerEvent
from tests.factories.customers import make_customer

pytestmark = pytest.mark.django_db


def test_create_normalises_email_phone_and_name_key(associate, store):
    customer = services.customer_create(
        actor=associate,
        name="  José   López ",
        email=" Jose.Lopez@Example.COM ",
        phone="(512) 555-0123",
        location_id=store.pk,
    )

    assert customer.name == "José López"
    assert customer.name_search == "jose lopez"
    assert customer.email == "jose.lopez@example.com"
    assert customer.phone == "+15125550123"
    assert customer.phone_national == "5125550123"
    assert customer.created_at_location_id == store.pk
    assert customer.created_by == associate
    event = CustomerEvent.objects.get(customer=customer)
    assert event.kind == "created"
    assert event.data["fields"] == ["email", "name", "name_search", "phone", "phone_national"]


def test_phone_in_another_region_is_stored_in_e164(associate, settings):
    settings.OMNI_DEFAULT_PHONE_REGION = "GB"

    customer = services.customer_create(actor=associate, name="Amy", phone="020 7946 0018")

    assert customer.phone == "+442079460018"


def test_invalid_phone_and_email_are_reported_per_field_without_echoing_them(associate):
    with pytest.raises(InvalidCustomerDataError) as caught:
        services.customer_create(actor=associate, name="Ann", email="not-an-email", phone="12")

    assert caught.value.extra["fields"] == {
        "email": "Enter a valid email address.",
        "phone": "Enter a valid phone number.",
    }
    assert "not-an-email" not in caught.value.message


def test_a_phone_or_an_email_is_needed(associate):
    with pytest.raises(InvalidCustomerDataError) as caught:
        services.customer_create(actor=associate, name="Nobody")

    assert caught.value.extra["fields"] == {"phone": "Give a phone number or an email."}


def test_email_is_unique_whatever_its_case(associate):
    first = make_customer(email="ana@example.com")

    with pytest.raises(DuplicateEmailError) as caught:
        services.customer_create(actor=associate, name="Ana again", email="ANA@example.com")

    assert caught.value.extra == {"existing_customer_id": first.pk}


def test_several_customers_may_have_no_email(associate):
    make_customer(email="")
    make_customer(email="")


def test_consent_is_not_recorded_unless_given(associate, store):
    customer = services.customer_create(actor=associate, name="Bo", phone="5125550100", location_id=store.pk)

    assert customer.email_consent is False
    assert customer.sms_consent is False
    assert not ConsentEvent.objects.filter(customer=customer).exists()


def test_consent_given_at_capture_records_when_where_and_who(associate, store):
    customer = services.customer_create(
        actor=associate,
        name="Bo",
        phone="5125550100",
        sms_consent=True,
        location_id=store.pk,
        consent_note="Asked at the till",
    )

    event = ConsentEvent.objects.get(customer=customer)
    assert (event.channel, event.granted, event.source) == ("sms", True, "store")
    assert event.location_id == store.pk
    assert event.actor == associate
    assert event.note == "Asked at the till"
    assert customer.sms_consent is True


def test_email_consent_needs_an_email(associate):
    with pytest.raises(InvalidCustomerDataError) as caught:
        services.customer_create(actor=associate, name="Bo", phone="5125550100", email_consent=True)

    assert "email_consent" in caught.value.extra["fields"]


def test_update_changes_fields_and_audits_field_names_only(associate):
    customer = make_customer(name="Cara")

    services.customer_update(
        customer_id=customer.pk,
        actor=associate,
        changes={"name": "Cara Díaz", "size_tops": "M", "interest_brands": "Northwind, Contoso, northwind"},
    )

    customer.refresh_from_db()
    assert customer.name_search == "cara diaz"
    assert customer.size_tops == "M"
    assert customer.interest_brands == ["Northwind", "Contoso"]
    event = CustomerEvent.objects.filter(customer=customer, kind="updated").get()
    assert event.data == {"fields": ["interest_brands", "name", "size_tops"]}


def test_update_rejects_unknown_fields_and_future_birthdays(associate):
    customer = make_customer()

    with pytest.raises(InvalidCustomerDataError) as caught:
        services.customer_update(
            customer_id=customer.pk, actor=associate, changes={"status": "erased", "birthday": "2999-01-01"}
        )

    assert caught.value.extra["fields"] == {"status": "Unknown field.", "birthday": "Enter a date in the past."}


def test_update_to_an_email_someone_else_has_is_refused(associate):
    make_customer(email="taken@example.com")
    customer = make_customer()

    with pytest.raises(DuplicateEmailError):
        services.customer_update(customer_id=customer.pk, actor=associate, changes={"email": "Taken@example.com"})
