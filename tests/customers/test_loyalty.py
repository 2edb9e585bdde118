"""Loyalty: points per unit of spend, tiers on rolling 12-month spend, redeem as a tender, returned on
refund; an append-only, idempotent ledger whose sum is the balance."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers import services
from customers.errors import (
    IdempotencyConflictError,
    InsufficientPointsError,
    InvalidPointsError,
    NothingToReturnError,
)
from customers.models import LoyaltyAccount, LoyaltyEntry
from customers.tasks import loyalty_refresh_tiers_task
from tests.factories.customers import SYSTEM, make_customer, record_purchase

pytestmark = pytest.mark.django_db


def earn(customer, amount, ref="SO-1", key=None):
    return services.loyalty_earn(
        customer_id=customer.pk,
        amount=Decimal(amount),
        order_ref=ref,
        idempotency_key=key or f"earn:{ref}",
        actor=SYSTEM,
    )


def redeem(customer, points, ref="SO-2", key=None):
    return services.loyalty_redeem(
        customer_id=customer.pk, points=points, order_ref=ref, idempotency_key=key or f"redeem:{ref}", actor=SYSTEM
    )


def test_points_per_unit_of_spend_are_configurable(settings):
    settings.OMNI_LOYALTY_POINTS_PER_UNIT = "2"
    customer = make_customer()

    entry = earn(customer, "49.99")

    assert (entry.points, entry.balance_after, entry.amount) == (99, 99, Decimal("49.99"))
    assert LoyaltyAccount.objects.get(customer=customer).balance == 99


def test_spend_below_one_point_earns_nothing_and_writes_nothing():
    customer = make_customer()

    assert earn(customer, "0.50") is None
    assert not LoyaltyEntry.objects.exists()


def test_earning_twice_with_the_same_key_counts_once():
    customer = make_customer()

    first = earn(customer, "100")
    again = earn(customer, "100")

    assert again.pk == first.pk
    assert customer.loyalty.balance == 100


def test_a_key_reused_for_another_operation_is_a_conflict():
    customer = make_customer()
    earn(customer, "100", key="k1")

    with pytest.raises(IdempotencyConflictError):
        redeem(customer, 10, key="k1")


def test_redeem_spends_points_as_a_tender_value(settings):
    settings.OMNI_LOYALTY_POINT_VALUE = "0.05"
    customer = make_customer()
    earn(customer, "300")

    entry = redeem(customer, 200)

    assert (entry.points, entry.amount, entry.balance_after) == (-200, Decimal("10.00"), 100)


def test_redeeming_more_than_the_balance_is_refused_and_changes_nothing():
    customer = make_customer()
    earn(customer, "50")

    with pytest.raises(InsufficientPointsError) as caught:
        redeem(customer, 51)

    assert caught.value.extra == {"requested": 51, "balance": 50}
    assert customer.loyalty.balance == 50
    assert LoyaltyEntry.objects.count() == 1


@pytest.mark.parametrize("points", [0, -5, 1.5, True])
def test_redeem_needs_a_positive_whole_number(points):
    customer = make_customer()
    earn(customer, "50")

    with pytest.raises(InvalidPointsError):
        redeem(customer, points)


def test_refund_returns_the_points_redeemed_on_the_order_once():
    customer = make_customer()
    earn(customer, "100")
    redeem(customer, 60, ref="SO-9")

    returned = services.loyalty_refund(customer_id=customer.pk, order_ref="SO-9", idempotency_key="r1", actor=SYSTEM)

    assert (returned.points, returned.balance_after) == (60, 100)
    with pytest.raises(NothingToReturnError):
        services.loyalty_refund(customer_id=customer.pk, order_ref="SO-9", idempotency_key="r2", actor=SYSTEM)


def test_partial_refund_returns_part_of_the_points():
    customer = make_customer()
    earn(customer, "100")
    redeem(customer, 60, ref="SO-9")

    services.loyalty_refund(customer_id=customer.pk, order_ref="SO-9", idempotency_key="r1", points=20, actor=SYSTEM)
    with pytest.raises(InvalidPointsError):
        services.loyalty_refund(
            customer_id=customer.pk, order_ref="SO-9", idempotency_key="r2", points=41, actor=SYSTEM
        )

    assert LoyaltyAccount.objects.get(customer=customer).balance == 60


def test_refunded_spend_takes_back_its_points_but_never_below_zero():
    customer = make_customer()
    earn(customer, "100", ref="SO-1")
    redeem(customer, 80, ref="SO-2")

    entry = services.loyalty_reverse_earn(
        customer_id=customer.pk, order_ref="SO-1", amount=Decimal("50"), idempotency_key="rev1", actor=SYSTEM
    )

    assert (entry.points, entry.balance_after) == (-20, 0)
    assert entry.note == "30 points already spent"


def test_tier_follows_rolling_12_month_spend_and_multiplies_points():
    customer = make_customer()
    record_purchase(customer, amount="600.00", occurred_at=timezone.now() - timedelta(days=30))

    account = LoyaltyAccount.objects.get(customer=customer)
    assert (account.tier, account.spend_12m) == ("silver", Decimal("600.00"))
    assert earn(customer, "100").points == 125


def test_purchases_older_than_the_window_stop_counting_after_the_nightly_refresh():
    customer = make_customer()
    record_purchase(customer, amount="1600.00", occurred_at=timezone.now() - timedelta(days=364))
    assert LoyaltyAccount.objects.get(customer=customer).tier == "gold"
    LoyaltyAccount.objects.filter(customer=customer).update(tier_evaluated_at=timezone.now() - timedelta(days=2))

    services.loyalty_refresh_tier(customer_id=customer.pk, now=timezone.now() + timedelta(days=2))
    account = LoyaltyAccount.objects.get(customer=customer)

    assert (account.tier, account.spend_12m) == ("member", Decimal("0"))


def test_nightly_task_re_evaluates_stale_accounts_only():
    fresh, stale = make_customer(), make_customer()
    record_purchase(fresh, amount="10")
    record_purchase(stale, amount="10")
    LoyaltyAccount.objects.filter(customer=stale).update(tier_evaluated_at=timezone.now() - timedelta(days=2))

    assert loyalty_refresh_tiers_task() == 1


def test_ledger_rows_are_append_only():
    customer = make_customer()
    entry = earn(customer, "10")

    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        entry.delete()


def test_the_database_refuses_a_negative_balance():
    customer = make_customer()
    earn(customer, "10")

    with pytest.raises(IntegrityError), transaction.atomic():
        LoyaltyAccount.objects.filter(customer=customer).update(balance=-1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["earn", "redeem", "refund"]), st.integers(1, 300)), max_size=12))
def test_the_ledger_always_sums_to_the_balance(ops):
    with transaction.atomic():
        customer = make_customer()
        for index, (kind, number) in enumerate(ops):
            try:
                if kind == "earn":
                    earn(customer, str(number), ref=f"O{index}", key=f"e{index}")
                elif kind == "redeem":
                    redeem(customer, number, ref=f"O{index % 3}", key=f"d{index}")
                else:
                    services.loyalty_refund(
                        customer_id=customer.pk, order_ref=f"O{index % 3}", idempotency_key=f"f{index}", actor=SYSTEM
                    )
            except (InsufficientPointsError, NothingToReturnError):
                pass
        account = LoyaltyAccount.objects.filter(customer=customer).first()
        entries = list(LoyaltyEntry.objects.filter(account__customer=customer).order_by("id"))
        balance = account.balance if account else 0
        assert sum(e.points for e in entries) == balance
        assert all(e.balance_after >= 0 for e in entries)
        if entries:
            assert entries[-1].balance_after == balance
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_two_tills_racing_for_the_same_points_cannot_both_succeed():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    customer = make_customer()
    earn(customer, "100")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def till(n: int) -> None:
        try:
            barrier.wait(timeout=5)
            redeem(customer, 80, ref=f"SO-till-{n}", key=f"race:{n}")
            outcomes.append("ok")
        except InsufficientPointsError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=till, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(outcomes) == ["ok", "refused"]
    assert LoyaltyAccount.objects.get(customer=customer).balance == 20
    assert LoyaltyEntry.objects.filter(kind="redeem").count() == 1
