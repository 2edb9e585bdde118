"""The nightly run's customer part: one SQL aggregation, RFM, segments, BG/NBD + Gamma-Gamma."""

from __future__ import annotations

import importlib
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from customers import services as customer_services
from insights import clv
from insights.errors import InsightRunInProgressError
from insights.models import CustomerInsight, InsightRun, RunStatus, Segment
from insights.services import insight_run_nightly
from insights.tasks import insights_nightly_task
from tests.factories.customers import SYSTEM, make_customer
from tests.factories.insights import make_sale
from tests.insights.conftest import AS_OF, CUTOFF, days_ago

pytestmark = pytest.mark.django_db


def test_summary_counts_purchase_days_and_net_spend(store, shirt):
    # given a customer who bought on three days, twice on the middle one
    customer = make_customer()
    make_sale(location=store, customer=customer, placed_at=days_ago(100), lines=[(shirt, 1, "40.00")])
    make_sale(location=store, customer=customer, placed_at=days_ago(40, hour=9), lines=[(shirt, 1, "30.00")])
    make_sale(location=store, customer=customer, placed_at=days_ago(40, hour=17), lines=[(shirt, 1, "20.00")])
    make_sale(location=store, customer=customer, placed_at=days_ago(10), lines=[(shirt, 2, "35.00")])

    # when the nightly run reads the data
    run = insight_run_nightly(as_of=AS_OF)

    # then the BG/NBD summary counts days, not orders, and times are in days
    insight = CustomerInsight.objects.get(customer=customer)
    assert run.status == RunStatus.DONE
    assert run.as_of == CUTOFF
    assert (insight.frequency, insight.recency_days, insight.age_days, insight.days_since_last) == (2, 90, 100, 10)
    assert insight.total_spend == Decimal("160.00")
    # the repeat purchases are 50 (day -40) and 70 (day -10)
    assert insight.repeat_mean_spend == Decimal("60.00")
    assert insight.last_location_id == store.pk
    assert insight.purchase_days == 3


def test_cancelled_and_fully_refunded_orders_are_not_purchases_and_refunds_reduce_spend(store, shirt):
    # given a customer with a normal order, a cancelled one, a fully refunded one and a partly refunded one
    customer = make_customer()
    make_sale(location=store, customer=customer, placed_at=days_ago(60), lines=[(shirt, 1, "100.00")])
    make_sale(
        location=store, customer=customer, placed_at=days_ago(50), lines=[(shirt, 1, "80.00")], status="cancelled"
    )
    make_sale(location=store, customer=customer, placed_at=days_ago(30), lines=[(shirt, 1, "70.00")], refunded="70")
    make_sale(location=store, customer=customer, placed_at=days_ago(20), lines=[(shirt, 2, "50.00")], refunded="40")

    insight_run_nightly(as_of=AS_OF)

    # then two purchase days remain (day -60 and day -20), the second worth 60
    insight = CustomerInsight.objects.get(customer=customer)
    assert (insight.frequency, insight.recency_days, insight.days_since_last) == (1, 40, 20)
    assert insight.total_spend == Decimal("160.00")
    assert insight.repeat_mean_spend == Decimal("60.00")


def test_orders_after_the_cutoff_wait_for_the_next_run(store, shirt):
    customer = make_customer()
    make_sale(location=store, customer=customer, placed_at=days_ago(5), lines=[(shirt, 1)])
    make_sale(location=store, customer=customer, placed_at=CUTOFF + timedelta(hours=1), lines=[(shirt, 1)])

    insight_run_nightly(as_of=AS_OF)

    assert CustomerInsight.objects.get(customer=customer).frequency == 0


def test_merged_records_count_for_the_survivor_and_erased_or_silent_customers_get_no_row(store, shirt):
    # given two records of one person, merged, each with an order; an erased buyer; a customer who never bought
    survivor, duplicate = make_customer(), make_customer()
    make_sale(location=store, customer=survivor, placed_at=days_ago(90), lines=[(shirt, 1)])
    make_sale(location=store, customer=duplicate, placed_at=days_ago(9), lines=[(shirt, 1)])
    customer_services.customer_merge(source_id=duplicate.pk, target_id=survivor.pk, actor=SYSTEM)
    erased = make_customer()
    make_sale(location=store, customer=erased, placed_at=days_ago(9), lines=[(shirt, 1)])
    customer_services.customer_erase(customer_id=erased.pk, actor=SYSTEM)
    silent = make_customer()

    insight_run_nightly(as_of=AS_OF)

    # then the survivor holds both purchases
    insight = CustomerInsight.objects.get(customer=survivor)
    assert (insight.frequency, insight.recency_days, insight.days_since_last) == (1, 81, 9)
    assert not CustomerInsight.objects.filter(customer__in=[duplicate, erased, silent]).exists()


def test_anonymous_sales_do_not_create_customers(store, shirt):
    make_sale(location=store, placed_at=days_ago(3), lines=[(shirt, 1)])

    run = insight_run_nightly(as_of=AS_OF)

    assert run.customers_scored == 0
    assert CustomerInsight.objects.count() == 0
    assert run.model_note == "No sales to customers yet."


def _history(store, variant, *, days: list[int], price="50.00", prices: list[str] | None = None):
    """A customer who bought on those days, at `price` each time or at `prices` in turn."""
    customer = make_customer()
    for day, paid in zip(days, prices or [price] * len(days), strict=True):
        make_sale(location=store, customer=customer, placed_at=days_ago(day), lines=[(variant, 1, paid)])
    return customer


def test_segments_follow_recency_and_frequency(store, shirt):
    # given customers with telling histories, plus a crowd of ordinary ones to rank them against
    champion = _history(store, shirt, days=[300, 200, 120, 60, 30, 8, 2], price="120.00")
    cant_lose = _history(store, shirt, days=[700, 650, 600, 560, 520, 500], price="150.00")
    newcomer = _history(store, shirt, days=[4])
    lapsed = _history(store, shirt, days=[690])
    for i in range(16):
        _history(store, shirt, days=[400 - 20 * i, 200 - 10 * i])

    insight_run_nightly(as_of=AS_OF)

    segment = dict(CustomerInsight.objects.values_list("customer_id", "segment"))
    assert segment[champion.pk] == Segment.CHAMPIONS
    assert segment[cant_lose.pk] == Segment.CANT_LOSE
    assert segment[newcomer.pk] == Segment.NEW
    assert segment[lapsed.pk] == Segment.LAPSED
    # and the valuable customer drifting away is flagged at risk, the champion is not
    flags = dict(CustomerInsight.objects.values_list("customer_id", "at_risk"))
    assert flags[cant_lose.pk] is True
    assert flags[champion.pk] is False


def test_predictions_come_from_models_fitted_on_the_retailers_own_customers(store, shirt):
    # given 40 customers with varied histories
    rng = random.Random(11)
    customers = []
    for _ in range(40):
        first = rng.randint(60, 500)
        later = sorted({rng.randint(1, first - 1) for _ in range(rng.choice([0, 0, 1, 2, 4, 7]))}, reverse=True)
        # each customer has a typical basket, and no two visits cost exactly the same
        typical = rng.choice([30, 45, 60, 90, 140])
        prices = [f"{typical * rng.uniform(0.6, 1.4):.2f}" for _ in range(1 + len(later))]
        customers.append(_history(store, shirt, days=[first, *later], prices=prices))

    run = insight_run_nightly(as_of=AS_OF)

    # then both models were fitted and recorded on the run
    assert run.model_note == ""
    assert set(run.bgnbd) >= {"r", "alpha_days", "a", "b", "log_likelihood", "n"}
    assert run.bgnbd["n"] == 40
    assert run.gamma_gamma["n"] == sum(1 for c in customers if c.insight.frequency > 0)
    # and every customer has a probability of being active, a 90-day expectation and a 12-month value
    insights = list(CustomerInsight.objects.all())
    assert len(insights) == 40
    for insight in insights:
        assert 0 <= insight.p_alive <= 1
        assert insight.expected_purchases_90d >= 0
        assert insight.clv_12m >= 0
        assert insight.value_band in {"top", "high", "medium", "low"}
    # a one-off buyer is certainly "alive" under BG/NBD; the best band holds the top 5% (2 of 40)
    assert all(i.p_alive == 1.0 for i in insights if i.frequency == 0)
    assert sum(1 for i in insights if i.value_band == "top") == 2
    # the predictions are the model's, customer by customer
    params = clv.BgNbdParams(run.bgnbd["r"], run.bgnbd["alpha_days"], run.bgnbd["a"], run.bgnbd["b"])
    some = insights[0]
    expected = clv.bgnbd_conditional_expected_purchases(params, 90, some.frequency, some.recency_days, some.age_days)
    assert some.expected_purchases_90d == pytest.approx(expected[0])


def test_too_few_customers_leave_predictions_empty_and_say_why(store, shirt):
    _history(store, shirt, days=[100, 50])
    _history(store, shirt, days=[30])

    run = insight_run_nightly(as_of=AS_OF)

    assert "BG/NBD needs at least 10 customers" in run.model_note
    assert run.bgnbd == {}
    insight = CustomerInsight.objects.first()
    assert insight.p_alive is None and insight.clv_12m is None and insight.value_band == ""
    assert insight.segment  # RFM does not need the models


def test_without_spread_in_spend_clv_falls_back_to_each_customers_own_spend(store, shirt):
    # given 30 customers with varied visits who all pay exactly 50.00 a visit
    rng = random.Random(4)
    for _ in range(30):
        first = rng.randint(60, 500)
        _history(store, shirt, days=[first, *sorted({rng.randint(1, first - 1) for _ in range(rng.randint(0, 5))})])

    run = insight_run_nightly(as_of=AS_OF)

    # then Gamma-Gamma is refused (no spread to model) and CLV uses 50.00 a visit
    assert "Gamma-Gamma" in run.model_note and "own mean spend" in run.model_note
    assert run.gamma_gamma == {}
    for insight in CustomerInsight.objects.all():
        assert insight.expected_spend == Decimal("50.00")
        assert insight.clv_12m == pytest.approx(Decimal("50") * Decimal(insight.clv_12m / 50), abs=Decimal("0.01"))
        assert insight.clv_12m > 0


def test_a_segment_change_is_remembered(store, shirt):
    # given a newcomer scored today
    customer = _history(store, shirt, days=[3])
    for i in range(5):
        _history(store, shirt, days=[200 + i, 100 + i])
    insight_run_nightly(as_of=AS_OF)
    assert CustomerInsight.objects.get(customer=customer).segment == Segment.NEW

    # when they do not come back for two months
    later = AS_OF + timedelta(days=60)
    insight_run_nightly(as_of=later)

    # then the new segment carries the old one and the day it changed
    insight = CustomerInsight.objects.get(customer=customer)
    assert insight.segment != Segment.NEW
    assert insight.previous_segment == Segment.NEW
    assert insight.segment_since == later.date()
    assert insight.days_since_last == 63


def test_only_one_run_at_a_time_and_a_dead_run_is_cleared(store):
    InsightRun.objects.create(as_of=CUTOFF, started_at=timezone.now())

    with pytest.raises(InsightRunInProgressError):
        insight_run_nightly(as_of=AS_OF)

    InsightRun.objects.update(started_at=timezone.now() - timedelta(hours=3))
    run = insight_run_nightly(as_of=AS_OF)
    assert run.status == RunStatus.DONE
    assert InsightRun.objects.filter(status=RunStatus.FAILED, error__startswith="Abandoned").count() == 1


def test_a_failing_run_is_recorded_and_changes_nothing(store, shirt, settings):
    # given last night's insight
    customer = _history(store, shirt, days=[40, 10])
    insight_run_nightly(as_of=AS_OF)
    before = CustomerInsight.objects.get(customer=customer)

    # when tonight's run fails half-way (a broken setting)
    settings.OMNI_INSIGHTS_FREQUENCY_BANDS = [3, 2]
    with pytest.raises(ValueError, match="FREQUENCY_BANDS"):
        insight_run_nightly(as_of=AS_OF + timedelta(days=1))

    # then the run says so and the customer's insight is last night's
    failed = InsightRun.objects.order_by("-id").first()
    assert failed.status == RunStatus.FAILED
    assert "FREQUENCY_BANDS" in failed.error
    after = CustomerInsight.objects.get(customer=customer)
    assert (after.run_id, after.days_since_last) == (before.run_id, before.days_since_last)


def test_the_run_costs_the_same_queries_for_3_or_30_customers(store, shirt, django_assert_num_queries):
    for i in range(3):
        _history(store, shirt, days=[50 + i, 5 + i])
    with CaptureQueriesContext(connection) as small:
        insight_run_nightly(as_of=AS_OF)
    for i in range(27):
        _history(store, shirt, days=[80 + i, 20 + i, 2])
    with CaptureQueriesContext(connection) as large:
        insight_run_nightly(as_of=AS_OF + timedelta(days=1))

    assert len(large.captured_queries) == len(small.captured_queries)


def test_the_celery_task_runs_the_nightly_refresh_and_is_scheduled(store, shirt):
    _history(store, shirt, days=[20, 5])

    run_id = insights_nightly_task.apply().get()  # runs the task here, as a worker would

    assert InsightRun.objects.get(pk=run_id).status == RunStatus.DONE
    # the data migration's schedule (applied again here: transactional tests flush migration data)
    importlib.import_module("insights.migrations.0002_beat_schedule").add_schedule(django_apps, None)
    task = PeriodicTask.objects.get(task="insights.tasks.insights_nightly_task")
    assert task.enabled and task.crontab.hour == "4"
