"""Querysets that take row locks: always `of=("self",)`, in one fixed order, evaluated at once."""

from __future__ import annotations

from django.db.models import Q

from .models import Reservation, StockLevel


def stock_levels_lock(*, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], StockLevel]:
    """Lock the levels of (location_id, variant_id) pairs in that order; missing pairs are absent.

    Not pk order: the engine's guarded updates (services._apply) take level locks in
    (location_id, variant_id) order, and both paths must use the same order or a count and a
    multi-level operation deadlock each other. PostgreSQL locks the rows after sorting them.
    Caller must be inside transaction.atomic.
    """
    if not pairs:
        return {}
    condition = Q()
    for location_id, variant_id in pairs:
        condition |= Q(location_id=location_id, variant_id=variant_id)
    levels = StockLevel.objects.select_for_update(of=("self",)).filter(condition).order_by("location_id", "variant_id")
    return {(level.location_id, level.variant_id): level for level in levels}


def reservations_lock(*, ids: list[int]) -> list[Reservation]:
    """Lock reservations by id in pk order. Caller must be inside transaction.atomic."""
    return list(Reservation.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk"))
