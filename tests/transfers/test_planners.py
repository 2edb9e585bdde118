"""The planners: replenishment and rebalancing pick the right lines, say why, and never plan twice."""

from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import ProductFactory, VariantFactory
from tests.factories.transfers import (
    PolicyFactory,
    PolicyOverrideFactory,
    assert_ledger_matches_levels,
    level,
    planner_settings,
    put_stock,
    stock_history,
)
from transfers import selectors, services
from transfers.models import PlanRun, Transfer, TransferLine, TransferSource, TransferStatus
from transfers.tasks import plan_key, transfers_plan_task

pytestmark = pytest.mark.django_db


def run(*planners, key="test-run"):
    outcome = services.plan_run(planners=list(planners), key=key, now=timezone.now())
    return outcome


def lines_of(source=None):
    lines = TransferLine.objects.select_related("transfer", "variant")
    if source:
        lines = lines.filter(transfer__source=source)
    return {(line.transfer.origin_id, line.transfer.destination_id, line.variant_id): line for line in lines}


def test_velocity_reads_sales_from_the_ledger(store):
    fast, slow, idle = VariantFactory(), VariantFactory(), VariantFactory()
    stock_history(store, fast, on_hand=0, sold=56)
    stock_history(store, slow, on_hand=3, sold=7)
    put_stock(store, idle, 4)

    velocity = selectors.sales_velocity(location_id=store.pk, variant_ids=[fast.pk, slow.pk, idle.pk])

    assert velocity == {fast.pk: 2.0, slow.pk: 0.25}


def test_replenishment_tops_up_below_target_and_says_why(warehouse, store):
    PolicyFactory(location=store, target_days_of_cover=Decimal("14"))
    low, fine = VariantFactory(), VariantFactory()
    put_stock(warehouse, low, 40)
    put_stock(warehouse, fine, 40)
    stock_history(store, low, on_hand=2, sold=28)  # 1/day: 2 days of cover
    stock_history(store, fine, on_hand=20, sold=28)  # 20 days of cover

    outcome = run("replenishment")

    planned = lines_of()
    assert list(planned) == [(warehouse.pk, store.pk, low.pk)]
    line = planned[(warehouse.pk, store.pk, low.pk)]
    assert line.quantity == 12  # target 14 units - 2 available
    assert line.why == "cover 2 d < target 14 d; velocity 1.00/d; wh-1 has 40"
    assert line.inputs["velocity"] == 1.0 and line.inputs["target_units"] == 14
    assert line.inputs["stockout_risk"] is True
    transfer = line.transfer
    assert transfer.source == TransferSource.REPLENISHMENT
    assert transfer.plan_run == outcome.run
    assert outcome.auto_approve_ids == [transfer.pk]
    assert outcome.run.counts["lines"] == 1
    assert outcome.run.parameters["velocity_window_days"] == 28


def test_within_policy_is_approved_automatically_and_holds_the_stock(warehouse, store):
    PolicyFactory(location=store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=0, sold=28)

    run_id = transfers_plan_task(planners=["replenishment"], key="task-run")

    transfer = Transfer.objects.get(plan_run_id=run_id)
    assert transfer.status == TransferStatus.APPROVED
    assert transfer.auto_approved
    assert level(warehouse, variant).reserved == 14
    assert_ledger_matches_levels()


def test_over_the_automatic_limit_waits_for_a_manager(warehouse, store):
    PolicyFactory(location=store, auto_approve_max_units=5)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=0, sold=28)

    run_id = transfers_plan_task(planners=["replenishment"], key="limit-run")

    transfer = Transfer.objects.get(plan_run_id=run_id)
    assert transfer.status == TransferStatus.PROPOSED
    assert transfer.needs_approval_reason == "14 units > automatic limit 5 (aus-1)"
    assert selectors.transfer_exceptions(location_ids={store.pk}) == [transfer]
    assert level(warehouse, variant).reserved == 0


def test_scarce_warehouse_stock_goes_to_the_most_urgent_store_first(warehouse, store, other_store):
    PolicyFactory(location=store)
    PolicyFactory(location=other_store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 12)
    stock_history(store, variant, on_hand=4, sold=28)  # 4 days of cover, needs 10
    stock_history(other_store, variant, on_hand=0, sold=28)  # 0 days of cover, needs 14

    run("replenishment")

    planned = lines_of()
    assert planned[(warehouse.pk, other_store.pk, variant.pk)].quantity == 12
    assert (warehouse.pk, store.pk, variant.pk) not in planned


def test_display_minimum_and_overrides_variant_over_category_over_store(warehouse, store):
    policy = PolicyFactory(location=store, target_days_of_cover=Decimal("14"), min_display_quantity=0)
    shoes = ProductFactory(category="shoes")
    boot, sneaker = VariantFactory(product=shoes), VariantFactory(product=shoes)
    shirt = VariantFactory()
    for variant in (boot, sneaker, shirt):
        put_stock(warehouse, variant, 50)
        stock_history(store, variant, on_hand=1, sold=28)
    PolicyOverrideFactory(policy=policy, category="shoes", target_days_of_cover=Decimal("7"), min_display_quantity=2)
    PolicyOverrideFactory(policy=policy, variant=boot, target_days_of_cover=Decimal("21"))
    idle = VariantFactory(product=shoes)
    put_stock(warehouse, idle, 50)
    put_stock(store, idle, 1)

    run("replenishment")

    planned = lines_of()
    assert planned[(warehouse.pk, store.pk, boot.pk)].quantity == 20  # 21 d (variant override)
    assert planned[(warehouse.pk, store.pk, sneaker.pk)].quantity == 6  # 7 d (category override)
    assert planned[(warehouse.pk, store.pk, shirt.pk)].quantity == 13  # 14 d (store policy)
    idle_line = planned[(warehouse.pk, store.pk, idle.pk)]  # no sales, display minimum 2
    assert idle_line.quantity == 1
    assert idle_line.why == "1 on hand and coming < display minimum 2; wh-1 has 50"


def test_running_twice_with_the_same_key_plans_once(warehouse, store):
    PolicyFactory(location=store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=0, sold=28)

    first = run("replenishment", key="same")
    second = run("replenishment", key="same")

    assert first.created and not second.created
    assert second.run == first.run
    assert Transfer.objects.count() == 1
    assert TransferLine.objects.count() == 1


def test_a_later_run_counts_planned_and_incoming_stock(warehouse, store):
    PolicyFactory(location=store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=0, sold=28)
    transfers_plan_task(planners=["replenishment"], key="day-1")
    transfer = Transfer.objects.get()
    services.transfer_dispatch(actor=services.PLANNER_ACTOR, transfer_id=transfer.pk)

    run("replenishment", key="day-2")

    assert Transfer.objects.count() == 1  # 14 units already on their way: nothing more to plan
    assert PlanRun.objects.get(key="day-2").counts["lines"] == 0


def test_rebalancing_moves_excess_to_where_it_sells(store, other_store):
    planner_settings(min_shipment_units=5, excess_cover_days=Decimal("60"))
    PolicyFactory(location=store)
    PolicyFactory(location=other_store)
    variant = VariantFactory()
    put_stock(other_store, variant, 30)  # never sold there: all excess
    stock_history(store, variant, on_hand=0, sold=28)  # sells 1/day, nothing left

    outcome = run("rebalancing")

    line = lines_of(TransferSource.REBALANCING)[(other_store.pk, store.pk, variant.pk)]
    assert line.quantity == 14
    assert line.why.startswith("aus-2 has 30 (no sales, keeps 0); here cover 0 d < target 14 d, sells 1.00/d")
    assert line.inputs["origin_available"] == 30
    assert outcome.run.counts["rebalancing_pairs"] == 1


def test_rebalancing_skips_pairs_below_the_minimum_shipment(store, other_store):
    planner_settings(min_shipment_units=50)
    PolicyFactory(location=store)
    PolicyFactory(location=other_store)
    variant = VariantFactory()
    put_stock(other_store, variant, 30)
    stock_history(store, variant, on_hand=0, sold=28)

    outcome = run("rebalancing")

    assert Transfer.objects.count() == 0
    assert outcome.run.counts["rebalancing_pairs_below_minimum"] == 1


def test_rebalancing_groups_lines_per_pair_and_keeps_the_donors_cover(store, other_store):
    planner_settings(min_shipment_units=1, excess_cover_days=Decimal("30"))
    PolicyFactory(location=store)
    PolicyFactory(location=other_store)
    a, b = VariantFactory(), VariantFactory()
    stock_history(other_store, a, on_hand=40, sold=14)  # 0.5/day: keeps 15
    put_stock(other_store, b, 10)
    stock_history(store, a, on_hand=0, sold=28)
    stock_history(store, b, on_hand=0, sold=28)

    run("rebalancing")

    transfer = Transfer.objects.get()
    quantities = dict(transfer.lines.values_list("variant_id", "quantity"))
    assert quantities == {a.pk: 14, b.pk: 10}
    assert (transfer.origin_id, transfer.destination_id) == (other_store.pk, store.pk)


def test_replenishment_then_rebalancing_in_one_run_uses_the_warehouse_first(warehouse, store, other_store):
    planner_settings(min_shipment_units=1)
    PolicyFactory(location=store)
    PolicyFactory(location=other_store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    put_stock(other_store, variant, 30)
    stock_history(store, variant, on_hand=0, sold=28)

    run("replenishment", "rebalancing")

    planned = lines_of()
    assert planned[(warehouse.pk, store.pk, variant.pk)].quantity == 10
    assert planned[(other_store.pk, store.pk, variant.pk)].quantity == 4


def test_plan_key_buckets_by_day_by_default():
    moment = timezone.datetime(2026, 11, 23, 17, 45, tzinfo=timezone.UTC)
    assert plan_key(["replenishment"], moment, 1440) == "replenishment:2026-11-23T00:00"
    assert plan_key(["replenishment", "rebalancing"], moment, 60) == "replenishment+rebalancing:2026-11-23T17:00"


def test_plan_transfers_command_plans_and_approves_once(warehouse, store):
    from io import StringIO

    from django.core.management import call_command

    PolicyFactory(location=store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=0, sold=28)
    out = StringIO()

    call_command("plan_transfers", key="cmd-run", stdout=out)
    call_command("plan_transfers", key="cmd-run", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("cmd-run: planned 1 lines in 1 transfers")
    assert lines[0].endswith("1 approved automatically")
    assert lines[1].startswith("cmd-run: already planned 1 lines")
    assert Transfer.objects.get().status == TransferStatus.APPROVED


def test_units_already_proposed_from_the_warehouse_are_not_offered_twice(warehouse, store, other_store):
    PolicyFactory(location=store, auto_approve_max_units=1)  # stays proposed: nothing is held yet
    variant = VariantFactory()
    put_stock(warehouse, variant, 20)
    stock_history(store, variant, on_hand=0, sold=28)
    transfers_plan_task(planners=["replenishment"], key="day-1")
    PolicyFactory(location=other_store)
    stock_history(other_store, variant, on_hand=0, sold=28)

    run("replenishment", key="day-2")

    line = TransferLine.objects.get(transfer__plan_run__key="day-2")
    assert (line.transfer.destination_id, line.quantity) == (other_store.pk, 6)
    assert line.why.endswith("wh-1 has 6")


def test_inactive_variants_and_stores_are_not_planned(warehouse, store, other_store):
    PolicyFactory(location=store)
    PolicyFactory(location=other_store)
    retired, selling = VariantFactory(), VariantFactory()
    for variant in (retired, selling):
        put_stock(warehouse, variant, 40)
        stock_history(store, variant, on_hand=0, sold=28)
        stock_history(other_store, variant, on_hand=0, sold=28)
    retired.is_active = False
    retired.save()
    other_store.is_active = False
    other_store.save()

    run("replenishment")

    assert list(lines_of()) == [(warehouse.pk, store.pk, selling.pk)]
    assert lines_of()[(warehouse.pk, store.pk, selling.pk)].unit_value == selling.price
