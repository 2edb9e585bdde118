"""The nightly run's customer part: one SQL aggregation, RFM, segments, BG/NBD + Gamma-Gamma."""

from __future__ import annotations

from decimal import Decimal

import pytest

from insights.models import CustomerInsight, RunStatus
from insights.services import insight_run_nightly
from tests.factories.customers import make_customer
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
