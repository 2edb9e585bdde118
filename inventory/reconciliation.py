"""Reconciliation: recompute every stock level from the ledger and report where they disagree.

Levels are a materialised running sum of the movements (inventory.services writes both in one
transaction), so they can only disagree through a bug or a write that bypassed the services: a
raw SQL fix, a restored backup, a migration. ERPNext's "ghost stock" (its Bin cache drifting from
the stock ledger) went unnoticed for exactly that reason. A run reports drift and NEVER fixes it:
which side is wrong is for a person to decide.

The comparison is one SQL statement (a GROUP BY over the ledger, joined to the levels both ways),
so it runs in the database, and all of it sees one snapshot: a movement and the level change it
explains commit together, so a consistent snapshot never shows drift that is not there, even
while stock keeps moving.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .models import (
    STOCK_STATES,
    ReconciliationDrift,
    ReconciliationRun,
    ReconciliationStatus,
    StockLevel,
    StockMovement,
)

logger = logging.getLogger(__name__)

# Stored drift rows per run; the count covers all of them.
MAX_DRIFT_ROWS = 10_000


def _reconciliation_sql() -> str:
    levels = StockLevel._meta.db_table
    movements = StockMovement._meta.db_table
    sums = ",\n".join(f"SUM(CASE WHEN state = '{state}' THEN quantity ELSE 0 END) AS {state}" for state in STOCK_STATES)
    level_columns = ", ".join(
        f"l.{state} AS level_{state}, COALESCE(g.{state}, 0) AS ledger_{state}" for state in STOCK_STATES
    )
    orphan_columns = ", ".join(f"NULL AS level_{state}, g.{state} AS ledger_{state}" for state in STOCK_STATES)
    per_state = "\nUNION ALL\n".join(
        f"SELECT location_id, variant_id, '{state}' AS state, level_{state} AS level_value, "  # noqa: S608
        f"ledger_{state} AS ledger_sum FROM compared WHERE COALESCE(level_{state}, 0) <> ledger_{state}"
        for state in STOCK_STATES
    )
    # Portable SQL (PostgreSQL and the embedded SQLite): FULL OUTER JOIN is written as a LEFT JOIN
    # plus the ledger groups that have no level row. Only table names and the fixed state names
    # are interpolated; nothing comes from input.
    return f"""
WITH ledger AS (
    SELECT location_id, variant_id, {sums}
    FROM {movements}
    GROUP BY location_id, variant_id
),
compared AS (
    SELECT l.location_id, l.variant_id, {level_columns}
    FROM {levels} l
    LEFT JOIN ledger g ON g.location_id = l.location_id AND g.variant_id = l.variant_id
    UNION ALL
    SELECT g.location_id, g.variant_id, {orphan_columns}
    FROM ledger g
    WHERE NOT EXISTS (
        SELECT 1 FROM {levels} l WHERE l.location_id = g.location_id AND l.variant_id = g.variant_id
    )
),
drift AS (
{per_state}
)
SELECT 'levels', NULL, NULL, NULL, NULL, (SELECT COUNT(*) FROM {levels})
UNION ALL
SELECT 'drift', location_id, variant_id, state, level_value, ledger_sum FROM drift
"""  # noqa: S608


def stock_reconcile(
    *, triggered_by: str = "system:reconciliation", max_drift_rows: int = MAX_DRIFT_ROWS
) -> ReconciliationRun:
    """Compare every level with the sum of its ledger; record the run and every drifting state.

    Changes no stock. Returns the finished run (status clean or drift). When the comparison itself
    fails the run is marked failed with the error, and the error is raised again.
    """
    run = ReconciliationRun.objects.create(triggered_by=triggered_by[:100])
    try:
        levels_checked = 0
        drift_count = 0
        drifts: list[ReconciliationDrift] = []
        with connection.cursor() as cursor:
            cursor.execute(_reconciliation_sql())
            while batch := cursor.fetchmany(2000):
                for kind, location_id, variant_id, state, level_value, value in batch:
                    if kind == "levels":
                        levels_checked = int(value)
                        continue
                    drift_count += 1
                    if len(drifts) < max_drift_rows:
                        drifts.append(
                            ReconciliationDrift(
                                run=run,
                                location_id=location_id,
                                variant_id=variant_id,
                                state=state,
                                level_value=level_value,
                                ledger_sum=int(value),
                            )
                        )
        with transaction.atomic():
            ReconciliationDrift.objects.bulk_create(drifts, batch_size=2000)
            run.levels_checked = levels_checked
            run.drift_count = drift_count
            run.status = ReconciliationStatus.DRIFT if drift_count else ReconciliationStatus.CLEAN
            run.finished_at = timezone.now()
            run.save(update_fields=["levels_checked", "drift_count", "status", "finished_at"])
    except Exception as error:
        ReconciliationRun.objects.filter(pk=run.pk).update(
            status=ReconciliationStatus.FAILED, finished_at=timezone.now(), error=repr(error)[:2000]
        )
        raise
    if drift_count:
        logger.error(
            "Stock reconciliation #%s found %s drifting level states in %s levels",
            run.pk,
            drift_count,
            levels_checked,
            extra=_log_extra(run),
        )
    else:
        logger.info("Stock reconciliation #%s: %s levels agree with the ledger", run.pk, levels_checked)
    return run


def _log_extra(run: ReconciliationRun) -> dict[str, Any]:
    return {"reconciliation_run": run.pk, "drift_count": run.drift_count}
