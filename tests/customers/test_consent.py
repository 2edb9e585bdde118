"""Marketing consent per channel: an append-only history of when, where, by whom and how."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers import services
from customers.errors import InvalidCustomerDataError
from customers.models import ConsentEvent
from tests.factories.customers import make_customer

pytestmark = pytest.mark.django_db


def test_grant_then_withdraw_keeps_both_events_in_order(associate, manager, store, other_store):
    customer = make_customer()

    services.customer_set_consent(
        customer_id=customer.pk,
        channel="email",
        granted=True,
        actor=associate,
        location_id=store.pk,
        note="Signed the form",
    )
    services.customer_set_consent(
        customer_id=customer.pk,
        channel="email",
        granted=False,
        actor=manager,
        location_id=other_store.pk,
        source="phone_call",
    )

    events = list(ConsentEvent.objects.filter(customer=customer).order_by("occurred_at", "id"))
    assert [(e.granted, e.actor_label, e.location_id, e.source) for e in events] == [
        (True, "associate", store.pk, "till"),
        (False, "manager", other_store.pk, "phone_call"),
    ]
    customer.refresh_from_db()
    assert customer.email_consent is False


def test_channels_are_independent(associate):
    customer = make_customer()

    services.customer_set_consent(customer_id=customer.pk, channel="sms", granted=True, actor=associate)

    customer.refresh_from_db()
    assert (customer.email_consent, customer.sms_consent) == (False, True)


def test_repeating_the_current_state_records_nothing(associate):
    customer = make_customer()
    services.customer_set_consent(customer_id=customer.pk, channel="sms", granted=True, actor=associate)

    again = services.customer_set_consent(customer_id=customer.pk, channel="sms", granted=True, actor=associate)

    assert again is None
    assert ConsentEvent.objects.filter(customer=customer).count() == 1


def test_an_older_change_does_not_override_a_newer_one(associate):
    customer = make_customer()
    now = timezone.now()
    services.customer_set_consent(
        customer_id=customer.pk, channel="email", granted=True, actor=associate, occurred_at=now
    )

    stale = services.customer_set_consent(
        customer_id=customer.pk,
        channel="email",
        granted=False,
        actor=associate,
        source="online_store",
        occurred_at=now - timedelta(hours=1),
    )

    assert stale is None
    customer.refresh_from_db()
    assert customer.email_consent is True


def test_consent_events_cannot_be_edited_or_deleted(associate):
    customer = make_customer()
    event = services.customer_set_consent(customer_id=customer.pk, channel="sms", granted=True, actor=associate)

    event.granted = False
    with pytest.raises(RuntimeError, match="append-only"):
        event.save()
    with pytest.raises(RuntimeError, match="append-only"):
        event.delete()


def test_removing_the_phone_withdraws_sms_consent_with_a_trace(associate):
    customer = make_customer()
    services.customer_set_consent(customer_id=customer.pk, channel="sms", granted=True, actor=associate)

    services.customer_update(customer_id=customer.pk, actor=associate, changes={"phone": ""})

    customer.refresh_from_db()
    assert customer.sms_consent is False
    latest = ConsentEvent.objects.filter(customer=customer).order_by("-id").first()
    assert (latest.granted, latest.source) == (False, "update")


def test_unknown_channel_is_refused(associate):
    customer = make_customer()

    with pytest.raises(InvalidCustomerDataError):
        services.customer_set_consent(customer_id=customer.pk, channel="fax", granted=True, actor=associate)
