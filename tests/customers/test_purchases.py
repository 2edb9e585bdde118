"""The purchases read model orders reports into: aggregates, idempotency, refunds, favourites."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from customers import selectors, services
from customers.errors import CustomerInactiveError, IdempotencyConflictError, InvalidCustomerDataError
from customers.models import CustomerPurchase, PurchasedItem
from tests.factories.customers import SYSTEM, make_customer, record_purchase

pytestmark = pytest.mark.django_db


def test_purchase_updates_lifetime_spend_visits_and_dates(store):
    customer = make_customer()
    first_at = timezone.now() - timedelta(days=60)
    last_at = timezone.now() - timedelta(days=2)

    record_purchase(customer, amount="80.00", occurred_at=first_at, location_id=store.pk)
    record_purchase(customer, amount="45.50", occurred_at=last_at, channel="online")

    customer.refresh_from_db()
    assert customer.lifetime_spend == Decimal("125.50")
    assert customer.visit_count == 2
    assert (customer.first_purchase_at, customer.last_purchase_at) == (first_at, last_at)
    stats = selectors.customer_stats(customer)
    assert stats.every_days == 58


def test_two_visits_hours_apart_give_no_rhythm(store):
    # The customer page read "Comes every 1 day" for two purchases minutes apart.
    customer = make_customer()
    record_purchase(customer, amount="10.00", occurred_at=timezone.now() - timedelta(hours=3), location_id=store.pk)
    record_purchase(customer, amount="12.00", occurred_at=timezone.now(), location_id=store.pk)

    customer.refresh_from_db()
    assert selectors.customer_stats(customer).every_days is None


def test_reporting_the_same_purchase_twice_counts_once():
    customer = make_customer()
    kwargs = {
        "customer_id": customer.pk,
        "order_ref": "SO-1",
        "channel": "store",
        "location_id": None,
        "amount": "10",
        "lines": [(None, "Northwind", "tops", 1, "10")],
        "occurred_at": timezone.now(),
        "idempotency_key": "p:SO-1",
        "actor": SYSTEM,
    }

    first = services.customer_record_purchase(**kwargs)
    again = services.customer_record_purchase(**kwargs)

    assert again.pk == first.pk
    customer.refresh_from_db()
    assert (customer.visit_count, customer.lifetime_spend) == (1, Decimal("10.00"))
    with pytest.raises(IdempotencyConflictError):
        services.customer_record_purchase(**{**kwargs, "order_ref": "SO-2"})


def test_refund_lowers_spend_but_not_visits_and_nets_favourites():
    customer = make_customer()
    record_purchase(customer, amount="60", lines=[(None, "Contoso", "shoes", 1, "60")], order_ref="SO-1")
    record_purchase(customer, amount="20", lines=[(None, "Northwind", "tops", 2, "20")], order_ref="SO-2")

    services.customer_record_refund(
        customer_id=customer.pk,
        order_ref="SO-1",
        channel="store",
        location_id=None,
        amount="60",
        lines=[(None, "Contoso", "shoes", 1, "60")],
        occurred_at=timezone.now(),
        idempotency_key="r:SO-1",
        actor=SYSTEM,
    )

    customer.refresh_from_db()
    assert (customer.lifetime_spend, customer.visit_count) == (Decimal("20.00"), 2)
    assert CustomerPurchase.objects.get(kind="refund").amount == Decimal("-60.00")
    favourites = selectors.customer_favourites(customer_id=customer.pk, by="brand")
    assert [f.name for f in favourites] == ["Northwind"]


def test_bad_lines_are_refused_whole():
    customer = make_customer()

    with pytest.raises(InvalidCustomerDataError):
        record_purchase(customer, lines=[(None, "A", "tops", 0, "10")])

    assert not PurchasedItem.objects.exists()
    assert not CustomerPurchase.objects.exists()


def test_an_erased_customer_takes_no_new_purchases(manager):
    customer = make_customer()
    services.customer_erase(customer_id=customer.pk, actor=manager)

    with pytest.raises(CustomerInactiveError):
        record_purchase(customer)


def test_favourite_brands_and_categories_rank_by_quantity():
    customer = make_customer()
    record_purchase(customer, lines=[(None, "Contoso", "shoes", 1, "90"), (None, "Northwind", "tops", 3, "60")])
    record_purchase(customer, lines=[(None, "Fabrikam", "tops", 1, "30")])

    assert [f.name for f in selectors.customer_favourites(customer_id=customer.pk, by="brand")] == [
        "Northwind",
        "Contoso",
        "Fabrikam",
    ]
    assert [f.name for f in selectors.customer_favourites(customer_id=customer.pk, by="category")] == [
        "tops",
        "shoes",
    ]
