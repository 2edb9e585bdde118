"""Reconciliation recomputes levels from the ledger, reports drift, and never fixes it."""

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from inventory import services
from inventory.models import ReconciliationDrift, ReconciliationRun, ReconciliationStatus, StockLevel
from inventory.reconciliation import stock_reconcile
from inventory.tasks import reservations_expire_task, stock_reconcile_task
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db
SYSTEM = services.SystemActor("test")


def raw_sql(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_clean_ledger_reports_no_drift(store, other_store, stock):
    shirt, socks = VariantFactory(), VariantFactory()
    stock(store, shirt, 5)
    stock(other_store, socks, 3)
    services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=shirt.pk, quantity=2)
    services.stock_set_safety(actor=SYSTEM, location_id=other_store.pk, variant_id=socks.pk, safety_stock=1)
    services.stock_sell_now(actor=SYSTEM, location_id=store.pk, variant_id=socks.pk, quantity=1)

    run = stock_reconcile()

    assert run.status == ReconciliationStatus.CLEAN
    assert run.levels_checked == 3
    assert run.drift_count == 0
    assert run.finished_at is not None
    assert not ReconciliationDrift.objects.exists()


def test_a_corrupted_level_is_reported_and_left_as_it_is(store, other_store, stock):
    shirt, socks = VariantFactory(), VariantFactory()
    stock(store, shirt, 5)
    stock(other_store, socks, 3)
    level = StockLevel.objects.get(location=store, variant=shirt)
    # A write that bypassed the services (e.g. a hand-made SQL "fix").
    raw_sql("UPDATE inventory_stocklevel SET on_hand = 9, incoming = 4 WHERE id = %s", [level.pk])

    run_id = stock_reconcile_task()

    run = ReconciliationRun.objects.get(pk=run_id)
    assert run.status == ReconciliationStatus.DRIFT
    assert (run.levels_checked, run.drift_count) == (2, 2)
    drifts = {(d.location_id, d.variant_id, d.state): (d.level_value, d.ledger_sum) for d in run.drifts.all()}
    assert drifts == {
        (store.pk, shirt.pk, "on_hand"): (9, 5),
        (store.pk, shirt.pk, "incoming"): (4, 0),
    }
    level.refresh_from_db()
    assert (level.on_hand, level.incoming) == (9, 4)  # reported, never fixed


def test_a_missing_level_row_is_drift_against_its_ledger(store, stock):
    variant = VariantFactory()
    level = stock(store, variant, 5)
    raw_sql("DELETE FROM inventory_stocklevel WHERE id = %s", [level.pk])

    run = stock_reconcile()

    drift = run.drifts.get()
    assert (drift.state, drift.level_value, drift.ledger_sum, drift.difference) == ("on_hand", None, 5, -5)
    assert run.levels_checked == 0


def test_stored_drift_rows_are_capped_but_all_are_counted(store, stock):
    variants = [VariantFactory() for _ in range(3)]
    for variant in variants:
        stock(store, variant, 2)
    raw_sql("UPDATE inventory_stocklevel SET on_hand = on_hand + 1", [])

    run = stock_reconcile(max_drift_rows=2)

    assert run.drift_count == 3
    assert run.drifts.count() == 2


def test_every_run_is_kept(store, stock):
    stock(store, VariantFactory(), 1)

    stock_reconcile()
    stock_reconcile()

    assert ReconciliationRun.objects.filter(status=ReconciliationStatus.CLEAN).count() == 2


def test_expiry_task_releases_expired_holds(store, stock):
    from datetime import timedelta

    from django.utils import timezone

    variant = VariantFactory()
    stock(store, variant, 2)
    services.stock_reserve(
        actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=2, expires_at=timezone.now() - timedelta(1)
    )

    assert reservations_expire_task() == 1
    assert reservations_expire_task() == 0
    assert StockLevel.objects.get(location=store, variant=variant).available == 2


def test_default_beat_schedules_are_created_by_the_migration_and_name_real_tasks():
    from importlib import import_module

    from django.apps import apps
    from django.db.migrations.recorder import MigrationRecorder

    from omni.celery import app

    migration = import_module("inventory.migrations.0004_beat_schedules")
    assert MigrationRecorder(connection).migration_qs.filter(app="inventory", name="0004_beat_schedules").exists()
    # A transactional test elsewhere may have flushed the rows the migration made: run it again,
    # twice, as a re-applied migration would.
    PeriodicTask.objects.filter(name__in=[migration.EXPIRE_TASK, migration.RECONCILE_TASK]).delete()
    migration.add_schedules(apps, None)
    migration.add_schedules(apps, None)

    expiry = PeriodicTask.objects.get(task="inventory.tasks.reservations_expire_task")
    reconcile = PeriodicTask.objects.get(task="inventory.tasks.stock_reconcile_task")
    assert (expiry.interval.every, expiry.interval.period, expiry.enabled) == (1, "minutes", True)
    assert (reconcile.crontab.minute, reconcile.crontab.hour, str(reconcile.crontab.timezone)) == ("30", "2", "UTC")
    assert reconcile.crontab.day_of_week == "*"
    app.loader.import_default_modules()
    assert {expiry.task, reconcile.task} <= set(app.tasks)
