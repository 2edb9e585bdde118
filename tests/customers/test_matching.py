"""One person, one customer: arrivals from the online store or a till are matched, never merged silently."""

import pytest

from customers import services
from customers.models import Customer, CustomerIdentity, MatchReview
from tests.factories.customers import SYSTEM, make_customer

pytestmark = pytest.mark.django_db


def find(**kwargs):
    return services.customer_find_or_create(actor=SYSTEM, source="online_store", **kwargs)


def test_online_customer_id_is_the_strongest_key():
    known = make_customer(email="ana@example.com")
    find(email="ana@example.com", online_customer_id=7012345678901)

    result = find(email="someone.else@example.com", online_customer_id=7012345678901)

    assert (result.customer.pk, result.outcome) == (known.pk, "identity")
    assert Customer.objects.count() == 1


def test_email_match_attaches_the_online_identity_and_fills_blanks():
    known = make_customer(email="ana@example.com", phone="")

    result = find(email="ANA@example.com", phone="512 555 0142", online_customer_id=42)

    assert (result.customer.pk, result.outcome) == (known.pk, "email")
    assert result.customer.phone == "+15125550142"
    assert CustomerIdentity.objects.get(kind="online_store").customer_id == known.pk


def test_phone_match_when_the_holder_has_no_conflicting_email():
    known = make_customer(email="", phone="5125550142")

    result = find(email="new@example.com", phone="+1 512 555 0142")

    assert (result.customer.pk, result.outcome) == (known.pk, "phone")
    assert result.customer.email == "new@example.com"


def test_a_match_never_overwrites_what_the_customer_has():
    known = make_customer(name="Ana López", email="ana@example.com", phone="5125550142")

    find(name="A. Lopez", email="ana@example.com", phone="5125550142")

    known.refresh_from_db()
    assert known.name == "Ana López"


def test_same_phone_with_another_email_goes_to_review_and_is_not_merged():
    mother = make_customer(name="Maria", email="maria@example.com", phone="5125550142")

    result = find(name="Lucia", email="lucia@example.com", phone="5125550142")

    assert result.outcome == "created_for_review"
    assert result.customer.pk != mother.pk
    review = MatchReview.objects.get(pk=result.review_ids[0])
    assert (review.customer_id, review.candidate_id, review.reason, review.status) == (
        result.customer.pk,
        mother.pk,
        "same_phone_other_email",
        "open",
    )
    assert Customer.objects.active().count() == 2


def test_phone_shared_by_several_customers_creates_a_review_per_candidate():
    first = make_customer(email="", phone="5125550142")
    second = make_customer(email="", phone="5125550142")

    result = find(name="Who", phone="5125550142")

    assert result.outcome == "created_for_review"
    assert sorted(MatchReview.objects.values_list("candidate_id", flat=True)) == [first.pk, second.pk]


def test_email_and_phone_pointing_at_different_people_opens_a_review():
    by_email = make_customer(email="ana@example.com", phone="5125550100")
    by_phone = make_customer(email="", phone="5125550142")

    result = find(email="ana@example.com", phone="5125550142")

    assert (result.customer.pk, result.outcome) == (by_email.pk, "email")
    review = MatchReview.objects.get()
    assert {review.customer_id, review.candidate_id} == {by_email.pk, by_phone.pk}
    by_email.refresh_from_db()
    assert by_email.phone == "+15125550100"


def test_the_same_ambiguity_twice_keeps_one_open_review():
    make_customer(email="ana@example.com", phone="5125550100")
    make_customer(email="", phone="5125550142")

    find(email="ana@example.com", phone="5125550142")
    find(email="ana@example.com", phone="5125550142")

    assert MatchReview.objects.count() == 1


def test_nobody_known_creates_a_customer_with_consent_from_the_store():
    result = find(name="New Person", email="new@example.com", email_consent=True)

    assert result.outcome == "created"
    assert result.customer.email_consent is True
    assert result.customer.consent_events.get().source == "online_store"


def test_loyalty_card_scanned_at_the_till_finds_the_customer():
    known = make_customer(loyalty_card="OMNI 0000 1234")

    result = services.customer_find_or_create(actor=SYSTEM, loyalty_card="omni-0000-1234", source="store")

    assert (result.customer.pk, result.outcome) == (known.pk, "identity")


def test_lenient_mode_drops_an_invalid_phone_from_a_webhook():
    result = find(email="ok@example.com", phone="not a phone", strict=False)

    assert result.customer.phone == ""
    assert result.customer.email == "ok@example.com"


def test_dismissing_a_review_closes_it_and_changes_nothing(manager):
    make_customer(email="maria@example.com", phone="5125550142")
    result = find(email="lucia@example.com", phone="5125550142")

    review = services.match_review_dismiss(review_id=result.review_ids[0], actor=manager)

    assert (review.status, review.resolved_by) == ("dismissed", manager)
    assert Customer.objects.active().count() == 2
