"""Reads about transfers: lists, one transfer with its story, what an order can follow, the dashboard,
and sales velocity from inventory's own ledger."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from inventory.models import MovementReason, StockMovement, StockState

from .models import (
    AUTOMATIC_SOURCES,
    DONE_STATUSES,
    IN_FLIGHT_STATUSES,
    PlanRun,
    Transfer,
    TransferLine,
    TransferSource,
    TransferStatus,
)

DEFAULT_VELOCITY_WINDOW_DAYS = 28


def _with_totals(transfers: QuerySet[Transfer]) -> QuerySet[Transfer]:
    return transfers.annotate(
        line_count=Count("lines"),
        units=Coalesce(Sum("lines__quantity"), 0),
        units_picked=Coalesce(Sum("lines__quantity_picked"), 0),
        units_counted=Coalesce(Sum("lines__quantity_counted"), 0),
    )


def _scoped(transfers: QuerySet[Transfer], location_ids: frozenset[int] | set[int] | None) -> QuerySet[Transfer]:
    """Only transfers touching these locations; None means every location (admins)."""
    if location_ids is None:
        return transfers
    ids = list(location_ids)
    return transfers.filter(Q(origin_id__in=ids) | Q(destination_id__in=ids))


def transfer_list(
    *,
    location_ids: frozenset[int] | set[int] | None,
    origin_id: int | None = None,
    destination_id: int | None = None,
    statuses: list[str] | tuple[str, ...] | None = None,
    source: str | None = None,
    limit: int = 100,
) -> list[Transfer]:
    """Transfers the caller may see, newest first, with line/unit totals. Two queries at most."""
    transfers = _scoped(Transfer.objects.select_related("origin", "destination"), location_ids)
    if origin_id is not None:
        transfers = transfers.filter(origin_id=origin_id)
    if destination_id is not None:
        transfers = transfers.filter(destination_id=destination_id)
    if statuses:
        transfers = transfers.filter(status__in=list(statuses))
    if source:
        transfers = transfers.filter(source=source)
    return list(_with_totals(transfers).order_by("-created_at", "-id")[:limit])


def transfer_get(*, transfer_id: int) -> Transfer | None:
    """One transfer with its lines (variants and products), events and plan run: four queries."""
    return (
        _with_totals(Transfer.objects.select_related("origin", "destination", "plan_run"))
        .prefetch_related(
            Prefetch("lines", queryset=TransferLine.objects.select_related("variant__product").order_by("pk")),
            "events",
        )
        .filter(pk=transfer_id)
        .first()
    )


def transfer_exceptions(*, location_ids: frozenset[int] | set[int] | None, limit: int = 200) -> list[Transfer]:
    """What waits for a manager: proposals outside policy and receipts with unacknowledged discrepancies."""
    transfers = _scoped(Transfer.objects.select_related("origin", "destination"), location_ids).filter(
        Q(status=TransferStatus.PROPOSED) | Q(has_discrepancy=True, discrepancy_acknowledged_at__isnull=True)
    )
    return list(_with_totals(transfers).order_by("created_at", "id")[:limit])


def transfer_exception_count(*, location_ids: frozenset[int] | set[int] | None) -> int:
    return (
        _scoped(Transfer.objects.all(), location_ids)
        .filter(Q(status=TransferStatus.PROPOSED) | Q(has_discrepancy=True, discrepancy_acknowledged_at__isnull=True))
        .count()
    )


# --- What orders follow ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferencedLine:
    """A transfer line brought for an order, with its transfer's progress."""

    transfer_id: int
    transfer_code: str
    status: str
    origin_id: int
    destination_id: int
    line_id: int
    variant_id: int
    quantity: int
    quantity_dispatched: int | None
    quantity_received: int | None
    dispatched_at: datetime | None
    received_at: datetime | None

    @property
    def arrived(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def cancelled(self) -> bool:
        return self.status == TransferStatus.CANCELLED


def transfer_lines_for_reference(*, reference_type: str, reference_id: str) -> list[ReferencedLine]:
    """Every transfer line carrying that reference (e.g. ("order", "SO-1042")), oldest first. One query."""
    lines = (
        TransferLine.objects.filter(reference_type=reference_type, reference_id=reference_id)
        .select_related("transfer")
        .order_by("pk")
    )
    return [
        ReferencedLine(
            transfer_id=line.transfer_id,
            transfer_code=line.transfer.code,
            status=line.transfer.status,
            origin_id=line.transfer.origin_id,
            destination_id=line.transfer.destination_id,
            line_id=line.pk,
            variant_id=line.variant_id,
            quantity=line.quantity,
            quantity_dispatched=line.quantity_dispatched,
            quantity_received=line.quantity_received,
            dispatched_at=line.transfer.dispatched_at,
            received_at=line.transfer.received_at,
        )
        for line in lines
    ]


def transfer_for_reference(*, reference_type: str, reference_id: str) -> Transfer | None:
    """The most recent transfer holding lines for that reference, or None."""
    return (
        Transfer.objects.filter(lines__reference_type=reference_type, lines__reference_id=reference_id)
        .select_related("origin", "destination")
        .order_by("-pk")
        .first()
    )


# --- Velocity (inventory's ledger) -------------------------------------------------------------------


def sales_velocity(
    *,
    location_id: int,
    variant_ids: list[int],
    window_days: int = DEFAULT_VELOCITY_WINDOW_DAYS,
    now: datetime | None = None,
) -> dict[int, float]:
    """Units sold per day at a location over the window, per variant: one GROUP BY over the ledger.

    Sold = on-hand movements with reason sale or fulfil (negative quantities). Variants that did
    not sell are absent.
    """
    now = now or timezone.now()
    rows = (
        StockMovement.objects.filter(
            location_id=location_id,
            variant_id__in=variant_ids,
            state=StockState.ON_HAND,
            reason__in=[MovementReason.SALE, MovementReason.FULFIL],
            quantity__lt=0,
            created_at__gte=now - timedelta(days=window_days),
            created_at__lt=now,
        )
        .values("variant_id")
        .annotate(units=Sum("quantity"))
        .order_by()
    )
    return {row["variant_id"]: -row["units"] / window_days for row in rows}


def plan_run_list(*, limit: int = 20) -> list[PlanRun]:
    return list(PlanRun.objects.annotate(transfer_count=Count("transfers")).order_by("-started_at")[:limit])


# --- Dashboard -----------------------------------------------------------------------------------------


def _week_label(value: datetime | None) -> str:
    return value.date().isoformat() if value else ""


def transfer_dashboard(
    *, location_ids: frozenset[int] | set[int] | None, days: int = 90, now: datetime | None = None
) -> dict[str, Any]:
    """The dashboard's KPIs and chart series (JSON-ready). A fixed number of queries (seven)."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    transfers = _scoped(Transfer.objects.all(), location_ids)

    in_flight = {
        (row["status"], row["source"]): row["n"]
        for row in transfers.filter(status__in=IN_FLIGHT_STATUSES).values("status", "source").annotate(n=Count("id"))
    }
    created = {
        row["source"]: row["n"]
        for row in transfers.filter(created_at__gte=since).values("source").annotate(n=Count("id")).order_by()
    }
    received = list(
        transfers.filter(status__in=DONE_STATUSES, received_at__gte=since).values(
            "created_at", "dispatched_at", "received_at", "source"
        )
    )
    lead_by_week: dict[str, list[float]] = defaultdict(list)
    transit_by_week: dict[str, list[float]] = defaultdict(list)
    for row in received:
        received_at = row["received_at"]
        if received_at is None:
            continue
        week = (received_at - timedelta(days=received_at.weekday())).date().isoformat()
        lead_by_week[week].append((received_at - row["created_at"]).total_seconds() / 3600)
        if row["dispatched_at"]:
            transit_by_week[week].append((received_at - row["dispatched_at"]).total_seconds() / 3600)

    lines = TransferLine.objects.filter(
        transfer__in=transfers, transfer__received_at__gte=since, quantity_received__gt=0
    )
    value_expr = ExpressionWrapper(
        F("quantity_received") * F("unit_value"), output_field=DecimalField(max_digits=14, decimal_places=2)
    )
    weekly = {
        _week_label(row["week"]): row
        for row in lines.annotate(week=TruncWeek("transfer__received_at"))
        .values("week")
        .annotate(
            value=Coalesce(Sum(value_expr), Decimal("0"), output_field=DecimalField(max_digits=14, decimal_places=2)),
            units=Coalesce(Sum("quantity_received"), 0),
            avoided=Count("id", filter=Q(inputs__stockout_risk=True)),
        )
        .order_by("week")
    }
    weeks = sorted(set(weekly) | set(lead_by_week))
    exceptions = transfer_exception_count(location_ids=location_ids)
    automatic = sum(n for source, n in created.items() if source in AUTOMATIC_SOURCES)
    total_created = sum(created.values())
    all_leads = [hours for values in lead_by_week.values() for hours in values]
    value_total = sum((row["value"] for row in weekly.values()), Decimal("0"))
    avoided_total = sum(row["avoided"] for row in weekly.values())

    def avg(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 1) if values else None

    flight_statuses = list(IN_FLIGHT_STATUSES)
    sources = list(TransferSource)
    return {
        "days": days,
        "kpis": {
            "in_flight": sum(in_flight.values()),
            "lead_time_hours": avg(all_leads),
            "automatic_share": round(100 * automatic / total_created) if total_created else None,
            "stockouts_avoided": avoided_total,
            "value_moved": str(value_total.quantize(Decimal("1"))),
            "exceptions": exceptions,
            "created": total_created,
        },
        "charts": {
            "in_flight": {
                "labels": [TransferStatus(status).label for status in flight_statuses],
                "datasets": [
                    {
                        "label": source.label,
                        "data": [in_flight.get((status, source.value), 0) for status in flight_statuses],
                    }
                    for source in sources
                ],
            },
            "lead_times": {
                "labels": weeks,
                "datasets": [
                    {"label": "Created to received (h)", "data": [avg(lead_by_week.get(week, [])) for week in weeks]},
                    {"label": "In transit (h)", "data": [avg(transit_by_week.get(week, [])) for week in weeks]},
                ],
            },
            "share": {
                "labels": [source.label for source in sources],
                "data": [created.get(source.value, 0) for source in sources],
            },
            "stockouts": {
                "labels": weeks,
                "data": [weekly[week]["avoided"] if week in weekly else 0 for week in weeks],
            },
            "value": {
                "labels": weeks,
                "data": [float(weekly[week]["value"]) if week in weekly else 0 for week in weeks],
            },
        },
    }
