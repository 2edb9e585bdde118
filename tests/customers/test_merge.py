"""Managers merge duplicates: orders, points and consents are kept; who merged what is recorded."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from customers import selectors, services
from customers.errors import CustomerInactiveError, MergeNotAllowedError
from customers.models import (
    ConsentEvent,
    CustomerIdentity,
    CustomerMerge,
    CustomerPurchase,
    LoyaltyEntry,
    MatchReview,
)
from tests.factories.customers import SYSTEM, make_customer, record_purchase

pytestmark = pytest.mark.django_db


@pytest.fixture
def duplicates():
    online = make_customer(name="Ana Lopez", email="ana@example.com", phone="", online_customer_id=99)
    store = make_customer(name="Ana López", email="ana.l@example.com", phone="5125550142", loyalty_card="CARD1234")
    return online, store


def test_merge_moves_identities_purchases_consents_and_points(duplicates, manager):
    online, store = duplicates
    record_purchase(store, amount="200.00")
    record_purchase(online, amount="50.00")
    services.loyalty_earn(
        customer_id=store.pk, amount=Decimal("200"), order_ref="SO-1", idempotency_key="e1", actor=SYSTEM
    )
    services.customer_set_consent(customer_id=store.pk, channel="sms", granted=True, actor=manager)

    merge = services.customer_merge(source_id=store.pk, target_id=online.pk, actor=manager)

    online.refresh_from_db()
    store.refresh_from_db()
    assert (store.status, store.merged_into_id) == ("merged", online.pk)
    assert set(CustomerIdentity.objects.filter(customer=online).values_list("kind", "value")) == {
        ("online_store", "99"),
        ("loyalty_card", "CARD1234"),
        ("email", "ana.l@example.com"),
    }
    assert online.phone == "+15125550142"
    assert CustomerPurchase.objects.filter(customer=online).count() == 2
    assert online.lifetime_spend == Decimal("250.00")
    assert online.visit_count == 2
    assert ConsentEvent.objects.filter(customer=online, channel="sms").count() == 1
    assert online.sms_consent is True
    assert online.loyalty.balance == 200
    assert list(LoyaltyEntry.objects.filter(account__customer=store).values_list("kind", "points")) == [
        ("merge_out", -200),
        ("earn", 200),
    ]
    assert (merge.actor, merge.source_id, merge.target_id) == (manager, store.pk, online.pk)
    assert merge.moved["purchases"] == 1
    assert merge.moved["points"] == 200


def test_merged_record_disappears_from_search_and_history_ids_cover_both(duplicates, manager):
    online, store = duplicates
    services.customer_merge(source_id=store.pk, target_id=online.pk, actor=manager)

    assert selectors.customer_search(query="5125550142") == [online]
    assert selectors.customer_history_ids(customer_id=online.pk) == [online.pk, store.pk]
    assert services.customer_resolve_id(customer_id=store.pk) == online.pk


def test_after_a_merge_the_old_email_still_finds_the_person(duplicates, manager):
    online, store = duplicates
    services.customer_merge(source_id=store.pk, target_id=online.pk, actor=manager)

    result = services.customer_find_or_create(actor=SYSTEM, email="ana.l@example.com", source="store")

    assert (result.customer.pk, result.outcome) == (online.pk, "email")


def test_purchases_reported_against_the_old_id_land_on_the_survivor(duplicates, manager):
    online, store = duplicates
    services.customer_merge(source_id=store.pk, target_id=online.pk, actor=manager)

    purchase = record_purchase(store, amount="10.00")

    assert purchase.customer_id == online.pk


def test_latest_consent_across_both_records_wins(duplicates, manager):
    online, store = duplicates
    now = timezone.now()
    services.customer_set_consent(
        customer_id=online.pk, channel="email", granted=True, actor=manager, occurred_at=now - timedelta(days=10)
    )
    services.customer_set_consent(
        customer_id=store.pk, channel="email", granted=True, actor=manager, occurred_at=now - timedelta(days=5)
    )
    services.customer_set_consent(
        customer_id=store.pk, channel="email", granted=False, actor=manager, occurred_at=now - timedelta(days=1)
    )

    services.customer_merge(source_id=store.pk, target_id=online.pk, actor=manager)

    online.refresh_from_db()
    assert online.email_consent is False
    assert ConsentEvent.objects.filter(customer=online).count() == 3


def test_merging_from_a_review_closes_it(manager):
    maria = make_customer(email="maria@example.com", phone="5125550142")
    result = services.customer_find_or_create(actor=SYSTEM, email="m.other@example.com", phone="5125550142")
    review_id = result.review_ids[0]

    merge = services.customer_merge(
        source_id=result.customer.pk, target_id=maria.pk, actor=manager, review_id=review_id
    )

    review = MatchReview.objects.get(pk=review_id)
    assert (review.status, review.resolved_by) == ("merged", manager)
    assert merge.review_id == review_id


def test_other_reviews_of_the_source_move_to_the_target(manager):
    a = make_customer(email="a@example.com", phone="5125550142")
    b = make_customer(email="", phone="5125550100")
    c_result = services.customer_find_or_create(actor=SYSTEM, email="c@example.com", phone="5125550142")
    c = c_result.customer

    services.customer_merge(source_id=c.pk, target_id=b.pk, actor=manager)

    review = MatchReview.objects.get()
    assert {review.customer_id, review.candidate_id} == {b.pk, a.pk}
    assert review.status == "open"


def test_merge_chains_are_flattened(manager):
    a, b, c = make_customer(), make_customer(), make_customer()
    services.customer_merge(source_id=a.pk, target_id=b.pk, actor=manager)

    services.customer_merge(source_id=b.pk, target_id=c.pk, actor=manager)

    a.refresh_from_db()
    assert a.merged_into_id == c.pk
    assert selectors.customer_history_ids(customer_id=c.pk) == [c.pk, a.pk, b.pk]


def test_a_record_cannot_be_merged_into_itself_or_twice(manager):
    a, b = make_customer(), make_customer()
    with pytest.raises(MergeNotAllowedError):
        services.customer_merge(source_id=a.pk, target_id=a.pk, actor=manager)
    services.customer_merge(source_id=a.pk, target_id=b.pk, actor=manager)

    with pytest.raises(MergeNotAllowedError):
        services.customer_merge(source_id=a.pk, target_id=b.pk, actor=manager)
    assert CustomerMerge.objects.count() == 1


def test_updating_a_merged_record_points_at_the_survivor(manager):
    a, b = make_customer(), make_customer()
    services.customer_merge(source_id=a.pk, target_id=b.pk, actor=manager)

    with pytest.raises(CustomerInactiveError) as caught:
        services.customer_update(customer_id=a.pk, actor=manager, changes={"name": "X"})

    assert caught.value.extra["merged_into"] == b.pk
