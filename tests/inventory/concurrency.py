"""Helpers for the stock engine's concurrency tests: threads started together, and the checks that
every race must leave true."""

import threading
import traceback

from django.db import connection

from inventory.models import Reservation, ReservationStatus, StockLevel
from inventory.reconciliation import stock_reconcile

TIMEOUT = 90


def run_threads(count, work):
    """Start `count` threads at once on `work(index)`; return (results, errors) by index.

    Each thread uses its own database connection and closes it at the end. Fails the test when a
    thread has not finished within TIMEOUT seconds (a deadlock that nobody detected).
    """
    barrier = threading.Barrier(count)
    results, errors = {}, {}

    def target(index):
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as error:  # noqa: BLE001 - collected and asserted on by the caller
            errors[index] = (error, traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {TIMEOUT}s (deadlock?): {stuck}"
    return results, errors


def assert_stock_sound():
    """After a race: levels equal the ledger, no state is negative, what is promised is on hand,
    and every level's reserved units are exactly its active holds."""
    assert stock_reconcile().drift_count == 0
    for level in StockLevel.objects.all():
        states = (level.on_hand, level.committed, level.reserved, level.unavailable, level.safety_stock, level.incoming)
        assert min(states) >= 0
        assert level.committed + level.reserved + level.unavailable <= level.on_hand
    for reservation in Reservation.objects.filter(status=ReservationStatus.ACTIVE):
        assert reservation.quantity > 0
    active = {}
    for reservation in Reservation.objects.filter(status=ReservationStatus.ACTIVE):
        key = (reservation.location_id, reservation.variant_id)
        active[key] = active.get(key, 0) + reservation.quantity
    for level in StockLevel.objects.all():
        assert level.reserved == active.get((level.location_id, level.variant_id), 0)
