"""The nightly run's merchandise part: size demand, sell-through and cover, anomalies."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from insights import merch, selectors
from insights.models import Anomaly, AnomalyKind, InsightRun, RunStatus, Season, SizeDemand, StockPerformance
from insights.services import cutoff_for, insight_run_nightly, segment_churn_findings
from inventory import services as stock
from inventory.models import StockMovement
from inventory.services import CountLine, SystemActor, ledger_backdate
from tests.factories.insights import make_sale
from tests.factories.inventory import ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db

SYSTEM = SystemActor("tests")


@pytest.fixture
def cutoff():
    """Tomorrow's midnight: what the stock services write now lies before it."""
    return cutoff_for(timezone.now()) + timedelta(days=1)


def before(cutoff, days, hour=12):
    return cutoff - timedelta(days=days) + timedelta(hours=hour)


def test_size_demand_counts_net_units_per_store_category_and_size(store, other_store, sizes, cutoff):
    # given sales of the same top in both stores, with a return and a cancelled order
    make_sale(location=store, placed_at=before(cutoff, 10), lines=[(sizes["S"], 2), (sizes["M"], 5, "50", 1)])
    make_sale(location=store, placed_at=before(cutoff, 3), lines=[(sizes["M"], 3)])
    make_sale(location=store, placed_at=before(cutoff, 2), lines=[(sizes["L"], 9)], status="cancelled")
    make_sale(location=other_store, placed_at=before(cutoff, 5), lines=[(sizes["L"], 4)])
    make_sale(location=store, placed_at=before(cutoff, 400), lines=[(sizes["XL"], 50)])  # older than 52 weeks

    run = insight_run_nightly(as_of=cutoff)

    rows = {(r.location_id, r.size): r.sold_units for r in SizeDemand.objects.filter(run=run, category="tops")}
    assert rows == {(store.pk, "S"): 2, (store.pk, "M"): 7, (other_store.pk, "L"): 4}
    assert all(r.lost_units == 0 for r in SizeDemand.objects.all())


def test_lost_endless_aisle_demand_counts_in_the_size_curve(store, sizes, cutoff):
    # given two M sold, and three requests for L that no location could source
    from orders.models import LostDemand

    make_sale(location=store, placed_at=before(cutoff, 4), lines=[(sizes["M"], 2)])
    LostDemand.objects.create(
        location=store, variant=sizes["L"], quantity=3, fulfilment="ship", occurred_at=before(cutoff, 3)
    )
    LostDemand.objects.create(
        location=store, variant=sizes["L"], quantity=5, fulfilment="ship", occurred_at=before(cutoff, -2)
    )  # after the cutoff: next run

    run = insight_run_nightly(as_of=cutoff)

    rows = {r.size: (r.sold_units, r.lost_units) for r in SizeDemand.objects.filter(run=run, location=store)}
    assert rows == {"M": (2, 0), "L": (0, 3)}
    curve = selectors.size_curve_for(run=run, category="tops", location_id=None).curve
    assert [(s.size, s.share) for s in curve] == [("M", 0.4), ("L", 0.6)]
    assert selectors.lost_demand_recorded() is True


def test_size_curve_of_a_store_and_a_recommended_buy(store, other_store, sizes, cutoff):
    make_sale(
        location=store, placed_at=before(cutoff, 10), lines=[(sizes["S"], 20), (sizes["M"], 40), (sizes["L"], 20)]
    )
    make_sale(location=other_store, placed_at=before(cutoff, 10), lines=[(sizes["M"], 10), (sizes["XL"], 10)])
    run = insight_run_nightly(as_of=cutoff)

    chain = selectors.size_curve_for(run=run, category="tops", location_id=None)
    assert [(s.size, round(s.share, 2)) for s in chain.curve] == [("S", 0.2), ("M", 0.5), ("L", 0.2), ("XL", 0.1)]
    at_store = selectors.size_curve_for(run=run, category="tops", location_id=store.pk)
    assert at_store.total_sold == 80
    # the store never sold XL but the chain did: it keeps a small share
    shares = {s.size: s.share for s in at_store.curve}
    assert 0 < shares["XL"] < 0.05
    assert sum(line.units for line in merch.buy_split(at_store.curve, 37)) == 37


def test_sell_through_cover_and_markdown_candidates(store, cutoff):
    # given a slow seller on sale for 10 weeks and a fast one, both received at the store
    slow = VariantFactory(product=ProductFactory(category="dresses", season=""), size="M")
    fast = VariantFactory(product=ProductFactory(category="dresses", season=""), size="M")
    for variant in (slow, fast):
        stock.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=60)
    ledger_backdate(movements=StockMovement.objects.filter(variant=slow), created_at=before(cutoff, 70))
    ledger_backdate(movements=StockMovement.objects.filter(variant=fast), created_at=before(cutoff, 70))
    make_sale(location=store, placed_at=before(cutoff, 40), lines=[(slow, 4)])
    make_sale(location=store, placed_at=before(cutoff, 6), lines=[(slow, 1)])
    make_sale(location=store, placed_at=before(cutoff, 6), lines=[(fast, 60)])
    make_sale(location=store, placed_at=before(cutoff, 3), lines=[(fast, 20)])

    run = insight_run_nightly(as_of=cutoff)

    rows = {r.product_id: r for r in StockPerformance.objects.filter(run=run, location=store)}
    slow_row, fast_row = rows[slow.product_id], rows[fast.product_id]
    # on hand is what the ledger says (60 each); units sold come from the orders
    assert (slow_row.on_hand, slow_row.units_sold, slow_row.units_sold_recent) == (60, 5, 1)
    assert slow_row.sell_through == pytest.approx(5 / 65)
    assert slow_row.weeks_of_cover == pytest.approx(60 / (1 / 4))
    assert slow_row.weeks_on_sale == 10
    assert slow_row.markdown_candidate is True
    assert fast_row.sell_through == pytest.approx(80 / 140)
    assert fast_row.weeks_of_cover == pytest.approx(60 / (80 / 4))
    assert fast_row.markdown_candidate is False


def test_a_dated_season_decides_what_is_late(store, cutoff):
    # given a product of a season 70% gone but on sale for only 2 weeks, not selling
    variant = VariantFactory(product=ProductFactory(category="outerwear", season="FW26"), size="L")
    stock.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=30)
    ledger_backdate(movements=StockMovement.objects.filter(variant=variant), created_at=before(cutoff, 14))
    today = cutoff.date()
    Season.objects.create(code="FW26", starts_on=today - timedelta(days=70), ends_on=today + timedelta(days=30))

    run = insight_run_nightly(as_of=cutoff)

    row = StockPerformance.objects.get(run=run, product=variant.product)
    assert row.season_elapsed == pytest.approx(0.7)
    assert row.weeks_on_sale == 2
    assert row.weeks_of_cover is None  # nothing sold lately
    assert row.markdown_candidate is True

    # while early in a season the same product is not a candidate
    Season.objects.filter(code="FW26").update(starts_on=today - timedelta(days=10), ends_on=today + timedelta(days=90))
    run = insight_run_nightly(as_of=cutoff)
    assert StockPerformance.objects.get(run=run, product=variant.product).markdown_candidate is False
    assert StockPerformance.objects.exclude(run=run).count() == 0  # older snapshots are replaced


@pytest.mark.parametrize(("starts", "ends", "elapsed"), [(-200, -20, 1.0), (10, 100, 0.0)])
def test_a_season_over_or_not_begun_is_all_or_nothing_gone(store, cutoff, starts, ends, elapsed):
    # A season that ended read "153% of season" on the sell-through page.
    variant = VariantFactory(product=ProductFactory(season="SS26"))
    stock.stock_receive(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=5)
    today = cutoff.date()
    Season.objects.create(code="SS26", starts_on=today + timedelta(days=starts), ends_on=today + timedelta(days=ends))

    run = insight_run_nightly(as_of=cutoff)

    assert StockPerformance.objects.get(run=run, product=variant.product).season_elapsed == pytest.approx(elapsed)


def test_a_collapsing_category_at_a_store_is_flagged_once(store, other_store, sizes, shirt, cutoff):
    # given 30 tops a week for eight weeks at one store, then 4 last week; steady sales elsewhere
    for week in range(1, 9):
        make_sale(location=store, placed_at=before(cutoff, 7 * week + 3), lines=[(sizes["M"], 30)])
        make_sale(location=other_store, placed_at=before(cutoff, 7 * week + 3), lines=[(sizes["M"], 30)])
    make_sale(location=store, placed_at=before(cutoff, 2), lines=[(sizes["M"], 4)])
    make_sale(location=other_store, placed_at=before(cutoff, 2), lines=[(sizes["M"], 28)])

    run = insight_run_nightly(as_of=cutoff)

    anomaly = Anomaly.objects.get(kind=AnomalyKind.SALES_DROP)
    assert (anomaly.location_id, anomaly.subject, anomaly.observed, anomaly.expected) == (store.pk, "tops", 4, 30)
    assert "4 units" in anomaly.message
    assert run.anomalies_found == 1

    # and running again the same day does not repeat it
    insight_run_nightly(as_of=cutoff)
    assert Anomaly.objects.filter(kind=AnomalyKind.SALES_DROP).count() == 1


def test_shrinkage_from_counts_is_flagged_against_the_stores_usual_losses(store, other_store, shirt, cutoff):
    # given a store whose count this week found 15 units missing, and one with a usual small loss
    for location in (store, other_store):
        stock.stock_receive(actor=SYSTEM, location_id=location.pk, variant_id=shirt.pk, quantity=100)
    stock.stock_count(actor=SYSTEM, location_id=store.pk, lines=[CountLine(shirt.pk, 85)])
    stock.stock_count(actor=SYSTEM, location_id=other_store.pk, lines=[CountLine(shirt.pk, 97)])

    insight_run_nightly(as_of=cutoff)

    anomaly = Anomaly.objects.get(kind=AnomalyKind.SHRINKAGE)
    assert (anomaly.location_id, anomaly.observed) == (store.pk, 15)
    assert "15 units" in anomaly.message and "600.00" in anomaly.message  # 15 x 40.00


def test_a_valuable_segment_losing_members_week_on_week_is_flagged():
    findings = segment_churn_findings(
        {"champions": 80, "loyal": 95}, {"champions": 100, "loyal": 100}, drop_share=0.15, min_members=20
    )
    assert [(f.subject, f.observed, f.expected) for f in findings] == [("champions", 80, 100)]
    assert segment_churn_findings({"champions": 1}, {"champions": 10}, drop_share=0.15, min_members=20) == []


def test_segment_churn_compares_with_the_run_a_week_before(store, shirt, cutoff):
    InsightRun.objects.create(
        as_of=cutoff - timedelta(days=7),
        started_at=timezone.now() - timedelta(days=7),
        status=RunStatus.DONE,
        segment_counts={"champions": 50},
    )

    insight_run_nightly(as_of=cutoff)  # nobody bought: no champions now

    anomaly = Anomaly.objects.get(kind=AnomalyKind.SEGMENT_CHURN)
    assert (anomaly.location_id, anomaly.subject, anomaly.observed, anomaly.expected) == (None, "champions", 0, 50)
    assert anomaly.detected_on == cutoff.date()
    assert isinstance(anomaly.detected_on, date)
