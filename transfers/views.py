"""Transfer pages (htmx, touch): the location's transfers, a transfer's story, picking and dispatch by
scanning at the origin, receiving by scanning at the destination (expected vs counted, live),
the managers' exceptions list, a manual transfer, and the dashboard.

Who: stock staff (associates, managers, warehouse operators) pick and dispatch at the origin and
receive at the destination; managers of either end approve, reject and cancel, acknowledge
discrepancies, create manual transfers and see the dashboard. Admins act everywhere.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from inventory.models import Location, Variant
from omni.errors import ApplicationError, ForbiddenError
from omni.http import htmx_toast
from omni.roles import MANAGERS, STOCK_STAFF, Role, can_act_at, has_role, role_required, user_location_ids

from . import selectors, services
from .errors import TransferNotFoundError
from .models import DONE_STATUSES, OPEN_STATUSES, Transfer, TransferStatus
from .tasks import plan_key, transfers_plan_task


class HtmxHttpRequest(HttpRequest):
    """What HtmxMiddleware adds (for the type checker)."""

    htmx: HtmxDetails


def _here(request: HtmxHttpRequest) -> Location | None:
    return getattr(request, "location", None)


def _transfer_or_404(transfer_id: int) -> Transfer:
    transfer = selectors.transfer_get(transfer_id=transfer_id)
    if transfer is None:
        raise TransferNotFoundError(transfer_id)
    return transfer


def _ensure_at(request: HtmxHttpRequest, transfer: Transfer, where: str) -> None:
    places = {
        "origin": [transfer.origin_id],
        "destination": [transfer.destination_id],
        "either": [transfer.origin_id, transfer.destination_id],
    }[where]
    if not any(can_act_at(request.user, place) for place in places):
        messages = {
            "origin": f"Only staff at {transfer.origin.name} can do that.",
            "destination": f"Only staff at {transfer.destination.name} can do that.",
            "either": "That transfer is not to or from your location.",
        }
        raise ForbiddenError("forbidden_location", messages[where], {"transfer_id": transfer.pk})


def _can(request: HtmxHttpRequest, transfer: Transfer) -> dict[str, bool]:
    """What this person may do with this transfer now (drives the buttons)."""
    user = request.user
    at_origin = can_act_at(user, transfer.origin_id)
    at_destination = can_act_at(user, transfer.destination_id)
    manager = has_role(user, Role.MANAGER) and (at_origin or at_destination)
    status = transfer.status
    return {
        "approve": manager and status == TransferStatus.PROPOSED,
        "reject": manager and status == TransferStatus.PROPOSED,
        "cancel": manager and status in (TransferStatus.APPROVED, TransferStatus.PICKING),
        "pick": at_origin and status in (TransferStatus.APPROVED, TransferStatus.PICKING),
        "receive": at_destination and status == TransferStatus.IN_TRANSIT,
        "acknowledge": manager and transfer.has_discrepancy and transfer.discrepancy_acknowledged_at is None,
    }


# The planner's figures per line, in reading order, with words for people.
INPUT_LABELS = {
    "planner": "Planner",
    "velocity": "Sold per day (here)",
    "available": "Available here",
    "incoming": "Incoming here",
    "pipeline": "Already planned here",
    "position": "Available + coming",
    "cover_days": "Days of cover",
    "target_days": "Target days of cover",
    "target_units": "Target units",
    "min_display": "Display minimum",
    "stockout_risk": "Would run out within a week",
    "source_available": "Available at the warehouse",
    "origin_available": "Available at the origin",
    "origin_velocity": "Sold per day at the origin",
    "origin_keeps": "The origin keeps",
    "pair_gain_units": "Expected extra sales (pair)",
    "min_shipment_units": "Minimum shipment",
}


def _input_rows(inputs: dict[str, Any]) -> list[tuple[str, Any]]:
    known = [(INPUT_LABELS[key], inputs[key]) for key in INPUT_LABELS if key in inputs]
    return known + [(key.replace("_", " "), value) for key, value in inputs.items() if key not in INPUT_LABELS]


def _lines_context(transfer: Transfer) -> dict[str, Any]:
    lines = list(transfer.lines.all())
    for line in lines:
        line.input_rows = _input_rows(line.inputs or {})  # type: ignore[attr-defined]
    return {
        "transfer": transfer,
        "lines": lines,
        "planned": sum(line.quantity for line in lines),
        "picked": sum(line.quantity_picked for line in lines),
        "expected": sum(line.expected for line in lines),
        "counted": sum(line.quantity_counted for line in lines),
        "short": -sum(min(0, line.quantity_counted - line.expected) for line in lines),
        "over": sum(max(0, line.quantity_counted - line.expected) for line in lines),
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- Lists -------------------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def transfer_index(request: HtmxHttpRequest) -> HttpResponse:
    """This location's transfers: to pick and dispatch, coming in, and the recent ones."""
    here = _here(request)
    allowed = user_location_ids(request.user)
    if here is None:
        return render(request, "transfers/index.html", {"here": None})
    outgoing = selectors.transfer_list(
        location_ids=allowed,
        origin_id=here.pk,
        statuses=[TransferStatus.APPROVED, TransferStatus.PICKING],
    )
    incoming = selectors.transfer_list(
        location_ids=allowed,
        destination_id=here.pk,
        statuses=[TransferStatus.IN_TRANSIT, *OPEN_STATUSES],
    )
    recent = selectors.transfer_list(
        location_ids=frozenset({here.pk}),
        statuses=[*DONE_STATUSES, TransferStatus.CANCELLED],
        limit=20,
    )
    is_manager = has_role(request.user, Role.MANAGER)
    context = {
        "here": here,
        "outgoing": outgoing,
        "incoming": incoming,
        "recent": recent,
        "is_manager": is_manager,
        # The same scope as the approvals page the badge links to (every location of the manager).
        "exception_count": selectors.transfer_exception_count(location_ids=user_location_ids(request.user))
        if is_manager
        else 0,
    }
    return render(request, "transfers/index.html", context)


@never_cache
@require_GET
@role_required(*MANAGERS)
def transfer_exceptions(request: HtmxHttpRequest) -> HttpResponse:
    """What waits for a manager: proposals outside policy and receipts with discrepancies."""
    transfers = selectors.transfer_exceptions(location_ids=user_location_ids(request.user))
    return render(request, "transfers/exceptions.html", {"transfers": transfers})


# --- One transfer ------------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def transfer_detail(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "either")
    context = {**_lines_context(transfer), "can": _can(request, transfer), "events": list(transfer.events.all())}
    return render(request, "transfers/detail.html", context)


def _done(request: HtmxHttpRequest, transfer: Transfer, message: str) -> HttpResponse:
    url = reverse("transfers:detail", args=[transfer.pk])
    if request.htmx:
        return htmx_toast(HttpResponseClientRedirect(url), message, "success")
    return redirect(url)


@require_POST
@role_required(*MANAGERS)
def transfer_approve(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "either")
    services.transfer_approve(actor=request.user, transfer_id=transfer.pk)
    if request.POST.get("from") == "exceptions":
        return _exception_row(request, transfer.pk, f"{transfer.code} approved.")
    return _done(request, transfer, f"{transfer.code} approved: units held at {transfer.origin.name}.")


@require_POST
@role_required(*MANAGERS)
def transfer_reject(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "either")
    services.transfer_reject(actor=request.user, transfer_id=transfer.pk, note=request.POST.get("note", "")[:200])
    if request.POST.get("from") == "exceptions":
        return _exception_row(request, transfer.pk, f"{transfer.code} rejected.")
    return _done(request, transfer, f"{transfer.code} rejected.")


@require_POST
@role_required(*MANAGERS)
def transfer_cancel(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "either")
    services.transfer_cancel(actor=request.user, transfer_id=transfer.pk, note=request.POST.get("note", "")[:200])
    return _done(request, transfer, f"{transfer.code} cancelled.")


@require_POST
@role_required(*MANAGERS)
def transfer_acknowledge(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "either")
    services.transfer_acknowledge_discrepancy(
        actor=request.user, transfer_id=transfer.pk, note=request.POST.get("note", "")[:200]
    )
    if request.POST.get("from") == "exceptions":
        return _exception_row(request, transfer.pk, f"{transfer.code}: discrepancy acknowledged.")
    return _done(request, transfer, f"{transfer.code}: discrepancy acknowledged.")


def _exception_row(request: HtmxHttpRequest, transfer_id: int, message: str) -> HttpResponse:
    """The exceptions list's row after a decision: gone (empty) when it no longer waits."""
    transfer = next(
        (t for t in selectors.transfer_exceptions(location_ids=user_location_ids(request.user)) if t.pk == transfer_id),
        None,
    )
    response = render(
        request, "transfers/exceptions.html#exception-row", {"transfer": transfer, "gone_id": transfer_id}
    )
    return htmx_toast(response, message, "success")


# --- Picking and dispatch (origin) -------------------------------------------------------------------


def _pick_panel(
    request: HtmxHttpRequest, transfer_id: int, *, message: str = "", error: str = "", status: int = 200
) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    context = {**_lines_context(transfer), "message": message, "error": error, "can": _can(request, transfer)}
    template = "transfers/pick.html#pick-panel" if request.htmx else "transfers/pick.html"
    return render(request, template, context, status=status)


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def transfer_pick(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "origin")
    if transfer.status not in (TransferStatus.APPROVED, TransferStatus.PICKING):
        return redirect("transfers:detail", transfer_id=transfer.pk)
    return _pick_panel(request, transfer.pk)


def _refused(error: ApplicationError) -> int:
    """The status of a refused scan or action: 409 when the transfer's state forbids it, else 400."""
    return 409 if error.status_code == 409 else 400


def _scan(request: HtmxHttpRequest, transfer_id: int, *, side: str, scan: Any, panel: Any) -> HttpResponse:
    """One unit scanned at `side` (picking at the origin, receiving at the destination)."""
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, side)
    try:
        result = scan(actor=request.user, transfer_id=transfer.pk, code=request.POST.get("code", ""), quantity=1)
    except ApplicationError as error:
        return panel(request, transfer.pk, error=error.message, status=_refused(error))
    return panel(request, transfer.pk, message=result.message)


def _set_quantity(request: HtmxHttpRequest, transfer_id: int, *, side: str, record: Any, panel: Any) -> HttpResponse:
    """A line's quantity typed instead of scanned (picked at the origin, counted at the destination)."""
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, side)
    line_id, quantity = _int(request.POST.get("line")), _int(request.POST.get("quantity"))
    try:
        if line_id is None or quantity is None:
            raise ApplicationError("invalid", "Choose a line and a whole number.")
        record(actor=request.user, transfer_id=transfer.pk, line_id=line_id, quantity=quantity)
    except ApplicationError as error:
        return panel(request, transfer.pk, error=error.message, status=400)
    return panel(request, transfer.pk)


@require_POST
@role_required(*STOCK_STAFF)
def transfer_pick_scan(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    return _scan(request, transfer_id, side="origin", scan=services.transfer_pick_scan, panel=_pick_panel)


@require_POST
@role_required(*STOCK_STAFF)
def transfer_pick_set(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    return _set_quantity(request, transfer_id, side="origin", record=services.transfer_set_picked, panel=_pick_panel)


@require_POST
@role_required(*STOCK_STAFF)
def transfer_dispatch(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    """Ship what was scanned (the page always ships the picked quantities, never the plan)."""
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "origin")
    picked = {line.pk: line.quantity_picked for line in transfer.lines.all()}
    try:
        if not any(picked.values()):
            raise ApplicationError("nothing_picked", "Scan the items first: nothing is picked yet.")
        services.transfer_dispatch(actor=request.user, transfer_id=transfer.pk, quantities=picked)
    except ApplicationError as error:
        return _pick_panel(request, transfer.pk, error=error.message, status=_refused(error))
    return _done(request, transfer, f"{transfer.code} dispatched to {transfer.destination.name}.")


# --- Receiving (destination) -------------------------------------------------------------------------


def _receive_panel(
    request: HtmxHttpRequest, transfer_id: int, *, message: str = "", error: str = "", status: int = 200
) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    context = {**_lines_context(transfer), "message": message, "error": error}
    template = "transfers/receive.html#receive-panel" if request.htmx else "transfers/receive.html"
    return render(request, template, context, status=status)


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def transfer_receive(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "destination")
    if transfer.status != TransferStatus.IN_TRANSIT:
        return redirect("transfers:detail", transfer_id=transfer.pk)
    return _receive_panel(request, transfer.pk)


@require_POST
@role_required(*STOCK_STAFF)
def transfer_receive_scan(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    return _scan(request, transfer_id, side="destination", scan=services.transfer_receive_scan, panel=_receive_panel)


@require_POST
@role_required(*STOCK_STAFF)
def transfer_receive_set(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    return _set_quantity(
        request, transfer_id, side="destination", record=services.transfer_set_counted, panel=_receive_panel
    )


@require_POST
@role_required(*STOCK_STAFF)
def transfer_receive_finish(request: HtmxHttpRequest, transfer_id: int) -> HttpResponse:
    """Book what was counted; differences become ledger movements and are flagged to a manager."""
    transfer = _transfer_or_404(transfer_id)
    _ensure_at(request, transfer, "destination")
    try:
        result = services.transfer_receive(actor=request.user, transfer_id=transfer.pk)
    except ApplicationError as error:
        return _receive_panel(request, transfer.pk, error=error.message, status=_refused(error))
    message = (
        f"{transfer.code} received with differences: a manager has been told."
        if result.has_discrepancy
        else f"{transfer.code} received in full."
    )
    return _done(request, transfer, message)


# --- A manual transfer -------------------------------------------------------------------------------


def _parse_lines(text: str) -> tuple[list[tuple[int, int]], list[str]]:
    """`SKU-or-barcode [quantity]` per line -> (variant_id, quantity) pairs and error messages."""
    wanted: list[tuple[str, int]] = []
    errors = []
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = raw.replace(",", " ").split()
        if not parts:
            continue
        quantity = _int(parts[1]) if len(parts) > 1 else 1
        if len(parts) > 2 or quantity is None or quantity <= 0:
            errors.append(f"Line {number}: write a SKU or barcode, then a quantity greater than zero.")
            continue
        wanted.append((parts[0], quantity))
    codes = [code for code, _ in wanted]
    variants = {v.sku: v.pk for v in Variant.objects.filter(sku__in=codes)}
    variants.update({v.barcode: v.pk for v in Variant.objects.filter(barcode__in=codes) if v.barcode})
    lines = []
    for code, quantity in wanted:
        if code not in variants:
            errors.append(f"No product with SKU or barcode {code}.")
        else:
            lines.append((variants[code], quantity))
    if not wanted and not errors:
        errors.append("Add at least one product.")
    return lines, errors


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(*MANAGERS)
def transfer_new(request: HtmxHttpRequest) -> HttpResponse:
    """A manager asks for (or sends) stock: from/to any location, one of them their own."""
    allowed = user_location_ids(request.user)
    locations = list(
        Location.objects.active().filter(Q(sends_transfers=True) | Q(receives_transfers=True)).order_by("kind", "code")
    )
    here = _here(request)
    form: dict[str, Any] = {
        "origin": request.POST.get("origin", ""),
        "destination": request.POST.get("destination", str(here.pk) if here else ""),
        "lines": request.POST.get("lines", ""),
        "reason": request.POST.get("reason", ""),
        "approve": request.POST.get("approve") == "on" if request.method == "POST" else True,
    }
    errors: list[str] = []
    if request.method == "POST":
        origin_id, destination_id = _int(form["origin"]), _int(form["destination"])
        lines, errors = _parse_lines(form["lines"])
        if origin_id is None or destination_id is None:
            errors.insert(0, "Choose where the stock comes from and where it goes.")
        elif allowed is not None and origin_id not in allowed and destination_id not in allowed:
            errors.insert(0, "One end of the transfer must be a location you work for.")
        if not errors:
            try:
                assert origin_id is not None and destination_id is not None
                transfer = services.transfer_create(
                    actor=request.user,
                    origin_id=origin_id,
                    destination_id=destination_id,
                    lines=lines,
                    reason=form["reason"][:200],
                )
                if form["approve"]:
                    services.transfer_approve(actor=request.user, transfer_id=transfer.pk)
            except ApplicationError as error:
                errors.append(error.message)
            else:
                return _done(request, transfer, f"{transfer.code} created.")
    context = {"locations": locations, "form": form, "errors": errors}
    if request.htmx:
        return render(request, "transfers/new.html#new-form", context, status=400 if errors else 200)
    return render(request, "transfers/new.html", context, status=400 if errors else 200)


# --- Dashboard ---------------------------------------------------------------------------------------


@require_POST
@role_required(Role.ADMIN)
def transfer_plan_now(request: HtmxHttpRequest) -> HttpResponse:
    """Queue a planning run now (replenishment + rebalancing); a double tap in the same minute is one run."""
    planners = ["replenishment", "rebalancing"]
    key = f"manual:{plan_key(planners, timezone.now(), 1)}"
    transaction.on_commit(partial(transfers_plan_task.delay, planners=planners, key=key))
    url = reverse("transfers:dashboard")
    response: HttpResponse = HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return htmx_toast(response, "Planning started: new transfers appear in a minute.", "success")


@never_cache
@require_GET
@role_required(*MANAGERS)
def transfer_dashboard(request: HtmxHttpRequest) -> HttpResponse:
    try:
        days = min(max(int(request.GET.get("days", 90)), 7), 365)
    except ValueError:
        days = 90
    data = selectors.transfer_dashboard(location_ids=user_location_ids(request.user), days=days)
    runs = selectors.plan_run_list(limit=10)
    context = {"data": data, "charts": data["charts"], "runs": runs, "is_admin": has_role(request.user, Role.ADMIN)}
    return render(request, "transfers/dashboard.html", context)
