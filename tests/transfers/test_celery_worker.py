"""Planners on a REAL Celery worker (Redis broker, the test database): killing the worker with
SIGKILL in the middle of a run, and running the planner again, neither loses nor duplicates transfers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.factories import VariantFactory
from tests.factories.transfers import PolicyFactory, assert_ledger_matches_levels, put_stock, stock_history
from tests.worker import Worker
from transfers.models import PlanRun, Transfer, TransferLine, TransferStatus
from transfers.tasks import transfers_plan_task

pytestmark = [pytest.mark.celery_worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

KEY = "worker-test:replenishment+rebalancing"


def _wait(condition, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    output = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
    pytest.fail(f"Timed out waiting for {what}.\n{output}")


def _snapshot() -> set[tuple]:
    return set(
        TransferLine.objects.values_list(
            "transfer__origin_id", "transfer__destination_id", "transfer__status", "variant_id", "quantity"
        )
    )


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()  # this helper's own broker database: no stale messages from an earlier run
    yield client
    client.flushdb()


@pytest.fixture
def network(warehouse, store, other_store):
    """Two stores below target on several variants, stock at the warehouse and excess in a store."""
    PolicyFactory(location=store)
    PolicyFactory(location=other_store)
    variants = [VariantFactory() for _ in range(6)]
    for variant in variants:
        put_stock(warehouse, variant, 30)
        stock_history(store, variant, on_hand=1, sold=28)
        stock_history(other_store, variant, on_hand=0, sold=14)
    return {"warehouse": warehouse, "stores": sorted([store, other_store], key=lambda s: s.pk), "variants": variants}


def _idle(client) -> bool:
    return client.llen("celery") == 0 and client.hlen("unacked") == 0


def test_kill_9_mid_run_then_redelivery_and_a_rerun_give_exactly_one_plan(network, broker, tmp_path):
    marker = tmp_path / "started"
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    first = Worker(logs[0], OMNI_PLANNER_TEST_DELAY="60", OMNI_PLANNER_TEST_MARKER=str(marker))
    second = None
    try:
        # Given a planner run that is inside its transaction on a real worker
        transfers_plan_task.apply_async(kwargs={"planners": ["replenishment", "rebalancing"], "key": KEY})
        _wait(marker.exists, 30, "the planner to start on worker A", logs)
        time.sleep(0.5)

        # When the worker is killed with SIGKILL
        first.kill9()

        # Then nothing of the run is left behind...
        assert not PlanRun.objects.filter(key=KEY).exists()
        assert Transfer.objects.count() == 0

        # ...and a new worker picks the unacknowledged message up again and completes the run once.
        second = Worker(logs[1])
        _wait(lambda: PlanRun.objects.filter(key=KEY).exists(), 40, "the redelivered run on worker B", logs)
        _wait(lambda: _idle(broker), 20, "worker B to finish", logs)
        run = PlanRun.objects.get(key=KEY)
        transfers = list(Transfer.objects.filter(plan_run=run))
        warehouse, stores = network["warehouse"], network["stores"]
        assert sorted((t.origin_id, t.destination_id) for t in transfers) == [(warehouse.pk, s.pk) for s in stores]
        assert all(t.status == TransferStatus.APPROVED for t in transfers)
        before = _snapshot()
        assert sum(quantity for *_, quantity in before) == 6 * 13 + 6 * 7

        # When the planner runs again for the same bucket
        transfers_plan_task.apply_async(kwargs={"planners": ["replenishment", "rebalancing"], "key": KEY})
        time.sleep(0.5)
        _wait(lambda: _idle(broker), 20, "the second run", logs)

        # Then nothing is duplicated and nothing was lost
        assert PlanRun.objects.filter(key=KEY).count() == 1
        assert _snapshot() == before
        assert Transfer.objects.count() == 2
        assert_ledger_matches_levels()
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
