"""Inventory pages for the store tablet (htmx, touch, 1024x768).

Screens: search or scan, a product's stock grid (sizes x locations, nearest first, live), the
low-stock list of the current location, adjustments and stocktakes (managers), and a variant's
ledger. Every view checks the role and the location the person is working for
(`request.location`, see omni.middleware.CurrentLocationMiddleware).

Live: pages that show stock name the variants (or the location) they show in an SSE connection
(omni.live_stream) and re-fetch their fragment when an event names one of them, so what they show
is read from the database after the change committed.

Double taps: every form that writes carries a hidden idempotency key made when the form was
rendered; the service (or, for stocktake scans, the session) applies a key once.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from omni.errors import ApplicationError, ForbiddenError, NotFoundError
from omni.http import htmx_toast
from omni.models import LiveEvent
from omni.roles import MANAGERS, STOCK_STAFF, can_act_at, ensure_location, has_role, role_required, user_location_ids

from . import selectors, services
from .api import ADJUSTMENT_REASON_CODES, MAX_QUANTITY, adjustment_sign_error
from .models import Location, MovementReason, StockState, Variant

LOW_STOCK_THRESHOLD = 2  # available at or below this is "low" (the list's default, and the grid's amber)
LOW_STOCK_PAGE = 50
LEDGER_PAGE = 50
SEARCH_MIN_LENGTH = 2
COUNT_SESSION_KEY = "inventory_count"
COUNT_SEEN_KEYS = 200  # scan keys remembered per count, so a double tap adds one
_KEY = re.compile(r"^[0-9a-f]{32}$")


class HtmxHttpRequest(HttpRequest):
    """What HtmxMiddleware adds (for the type checker)."""

    htmx: HtmxDetails


# --- Helpers -----------------------------------------------------------------------------------


def _here(request: HttpRequest) -> Location:
    """The location this person works for now; 403 without one."""
    here: Location | None = getattr(request, "location", None)
    if here is None:
        raise ForbiddenError("no_location", "You are not working for a location yet: ask a manager to set one.")
    ensure_location(request.user, here.pk)
    return here


def _new_key() -> str:
    return uuid.uuid4().hex


def _posted_key(request: HttpRequest) -> str | None:
    """The form's idempotency key (made at render time), or None when it is missing or malformed."""
    raw = request.POST.get("idempotency_key", "")
    return raw if _KEY.match(raw) else None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _latest_event_id() -> int:
    """Where the live outbox ends now, read BEFORE the data a live page or fragment shows.

    A page passes it as `since` so nothing between render and connect is lost; each live fragment
    carries it as `data-live-since`, so static/omni/live.js can tell a fragment that arrived after a
    newer message for it (rendered before that change) and have it re-fetch itself once.
    """
    return LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _live_url(keys: list[str], since: int) -> str:
    return f"{reverse('live-stream')}?{urlencode({'topics': ','.join(keys), 'since': since})}"


def _fragment(request: HtmxHttpRequest, template: str, fragment: str) -> str:
    return f"{template}#{fragment}" if request.htmx else template


# --- Search or scan ------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def stock_search(request: HtmxHttpRequest) -> HttpResponse:
    """One input for SKU, barcode or name; results as you type (htmx), Enter goes to `stock_scan`."""
    here = _here(request)
    query = request.GET.get("q", "").strip()[:100]
    results = selectors.product_search(query=query) if len(query) >= SEARCH_MIN_LENGTH else []
    context = {"here": here, "query": query, "results": results, "searched": len(query) >= SEARCH_MIN_LENGTH}
    return render(request, _fragment(request, "inventory/search.html", "search-results"), context)


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def stock_scan(request: HtmxHttpRequest) -> HttpResponse:
    """A scanned barcode or typed SKU (Enter): straight to the product; otherwise the search results.

    A name that finds exactly one product opens it too. An unknown barcode (digits) is said so.
    """
    here = _here(request)
    code = request.GET.get("q", "").strip()[:100]
    variant = selectors.variant_find(code=code) if code else None
    if variant is not None:
        return redirect(_product_url(variant.product_id, colour=variant.colour, variant_id=variant.pk))
    results = selectors.product_search(query=code) if len(code) >= SEARCH_MIN_LENGTH else []
    if len(results) == 1:
        hit = results[0]
        return redirect(
            _product_url(
                hit.product.pk,
                colour=hit.variant.colour if hit.variant else "",
                variant_id=hit.variant.pk if hit.variant else None,
            )
        )
    context = {
        "here": here,
        "query": code,
        "results": results,
        "searched": bool(code),
        "not_found": code if code and (code.isdigit() or not results) else None,
    }
    return render(request, "inventory/search.html", context, status=404 if code and not results else 200)


def _product_url(product_id: int, *, colour: str = "", variant_id: int | None = None) -> str:
    params: dict[str, Any] = {}
    if colour:
        params["colour"] = colour
    if variant_id:
        params["variant"] = variant_id
    url = reverse("inventory:product", args=[product_id])
    return f"{url}?{urlencode(params)}" if params else url


# --- Product: the stock grid -------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def stock_product(request: HtmxHttpRequest, product_id: int) -> HttpResponse:
    """The product's available stock by size (one colour) and location, nearest first; live.

    htmx asks for the `stock-grid` fragment only (the live refresh). Fixed number of queries.
    """
    here = _here(request)
    live_since = _latest_event_id()
    grid = selectors.product_stock_grid(product_id=product_id, colour=request.GET.get("colour"), origin=here)
    if grid is None:
        raise NotFoundError("unknown_product", "That product does not exist.", {"product_id": product_id})
    selected = _int(request.GET.get("variant"))
    context: dict[str, Any] = {
        "here": here,
        "grid": grid,
        "selected_variant": selected if selected in grid.variant_ids else None,
        "grid_url": _product_url(grid.product.pk, colour=grid.colour, variant_id=selected),
        "grand_total": sum(grid.totals),
        "low_threshold": LOW_STOCK_THRESHOLD,
        "live_since": live_since,
    }
    if request.htmx:
        return render(request, "inventory/product.html#stock-grid", context)
    detail_location = _int(request.GET.get("location"))
    if selected and detail_location:
        detail = selectors.level_breakdown(location_id=detail_location, variant_id=selected)
        context.update(_detail_context(request, here, detail))
    context["live_url"] = _live_url([f"variant:{pk}" for pk in grid.variant_ids], live_since)
    context["colour_links"] = [
        (colour, _product_url(grid.product.pk, colour=colour), colour == grid.colour) for colour in grid.colours
    ]
    return render(request, "inventory/product.html", context)


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def stock_level(request: HtmxHttpRequest, location_id: int, variant_id: int) -> HttpResponse:
    """The breakdown of one grid cell: on hand, committed, reserved, safety, unavailable, incoming."""
    here = _here(request)
    live_since = _latest_event_id()
    detail = selectors.level_breakdown(location_id=location_id, variant_id=variant_id)
    if detail is None:
        raise NotFoundError("unknown_level", "No such product or location.")
    if not request.htmx:
        url = _product_url(detail.variant.product_id, colour=detail.variant.colour, variant_id=variant_id)
        return redirect(f"{url}&location={location_id}")
    context = {**_detail_context(request, here, detail), "live_since": live_since}
    return render(request, "inventory/product.html#level-detail", context)


def _detail_context(request: HttpRequest, here: Location, detail: selectors.LevelBreakdown | None) -> dict[str, Any]:
    """The breakdown plus what this person may open from it (the ledger where they work, adjust here)."""
    if detail is None:
        return {"detail": None}
    return {
        "detail": detail,
        "detail_ledger": can_act_at(request.user, detail.location.pk),
        "detail_adjust": detail.location.pk == here.pk and has_role(request.user, *MANAGERS),
    }


# --- Low stock ---------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def stock_low(request: HtmxHttpRequest) -> HttpResponse:
    """This location's low stock (available at or below the threshold) and levels flagged for a count."""
    here = _here(request)
    live_since = _latest_event_id()
    threshold = _int(request.GET.get("threshold"))
    if threshold is None or not 0 <= threshold <= 1000:
        threshold = LOW_STOCK_THRESHOLD
    paginator = Paginator(selectors.low_stock_list(location_id=here.pk, threshold=threshold), LOW_STOCK_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    query = {"threshold": threshold}
    context = {
        "here": here,
        "threshold": threshold,
        "page": page,
        "list_url": f"{reverse('inventory:low-stock')}?{urlencode({**query, 'page': page.number})}",
        "thresholds": sorted({0, 1, 2, 3, 5, 10, 20, threshold}),
        "page_query": urlencode(query),
        "live_since": live_since,
    }
    if not request.htmx:
        context["live_url"] = _live_url([f"location:{here.pk}"], live_since)
    return render(request, _fragment(request, "inventory/low_stock.html", "low-stock-list"), context)


# --- Adjustments (managers) --------------------------------------------------------------------


def _adjust_context(here: Location, **extra: Any) -> dict[str, Any]:
    return {
        "here": here,
        "reason_codes": list(ADJUSTMENT_REASON_CODES.items()),
        "idempotency_key": _new_key(),
        "values": {},
        "errors": {},
        **extra,
    }


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(*MANAGERS)
def stock_adjust(request: HtmxHttpRequest) -> HttpResponse:
    """Correct on hand by a signed quantity with a reason code. Bad input: the form again, 422, nothing written."""
    here = _here(request)
    template = _fragment(request, "inventory/adjust.html", "adjust-form")
    if request.method == "GET":
        code = request.GET.get("code", "").strip()[:100]
        return render(request, "inventory/adjust.html", _adjust_context(here, values={"code": code}))

    values = {
        "code": request.POST.get("code", "").strip()[:100],
        "delta": request.POST.get("delta", "").strip()[:12],
        "reason_code": request.POST.get("reason_code", ""),
        "note": request.POST.get("note", "").strip()[:255],
    }
    errors: dict[str, str] = {}
    variant = selectors.variant_find(code=values["code"]) if values["code"] else None
    if not values["code"]:
        errors["code"] = "Scan or type the SKU or barcode."
    elif variant is None:
        errors["code"] = f"No product with SKU or barcode {values['code']}."
    delta = _int(values["delta"]) if re.fullmatch(r"[+-]?[0-9]{1,30}", values["delta"]) else None
    if delta is None:
        errors["delta"] = "Enter a whole number, e.g. -2 or 3."
    elif delta == 0:
        errors["delta"] = "An adjustment is a whole number other than zero."
    elif abs(delta) > MAX_QUANTITY:
        errors["delta"] = f"At most {MAX_QUANTITY} units at a time."
    if values["reason_code"] not in ADJUSTMENT_REASON_CODES:
        errors["reason_code"] = "Choose a reason."
    elif "delta" not in errors and delta and (sign_error := adjustment_sign_error(values["reason_code"], delta)):
        errors["delta"] = sign_error
    elif values["reason_code"] == "other" and not values["note"]:
        errors["note"] = "Say why in the note."
    key = _posted_key(request)
    if not errors and variant is not None and delta is not None:
        try:
            operation = services.stock_adjust(
                actor=request.user,
                location_id=here.pk,
                variant_id=variant.pk,
                delta=delta,
                reason_code=values["reason_code"],
                note=values["note"],
                idempotency_key=f"page:adjust:{here.pk}:{key}" if key else None,
            )
        except ApplicationError as exc:
            errors["delta" if exc.code in {"insufficient_stock", "invalid_quantity"} else "form"] = exc.message
        else:
            level = selectors.level_breakdown(location_id=here.pk, variant_id=variant.pk)
            done = {"variant": variant, "delta": delta, "level": level, "duplicate": operation.duplicate}
            response = render(request, template, _adjust_context(here, done=done))
            message = f"{variant.sku}: on hand {'+' if delta > 0 else ''}{delta}."
            return htmx_toast(response, message, "success") if request.htmx else response
    context = _adjust_context(here, values=values, errors=errors, variant=variant)
    if key:
        context["idempotency_key"] = key  # the same attempt, corrected, is still one operation
    return render(request, template, context, status=422)


# --- Stocktake (managers): a counting session kept in the Django session ----------------------


def _count_state(request: HttpRequest, here: Location) -> dict[str, Any]:
    """This location's count in progress: {"lines": {variant_id: counted}, "order": [...], "key", "seen"}."""
    counts = request.session.get(COUNT_SESSION_KEY) or {}
    state = counts.get(str(here.pk))
    if not isinstance(state, dict) or not isinstance(state.get("lines"), dict):
        state = {"lines": {}, "order": [], "key": _new_key(), "seen": []}
    return state


def _save_count(request: HttpRequest, here: Location, state: dict[str, Any] | None) -> None:
    counts = dict(request.session.get(COUNT_SESSION_KEY) or {})
    if state is None:
        counts.pop(str(here.pk), None)
    else:
        counts[str(here.pk)] = state
    request.session[COUNT_SESSION_KEY] = counts


def _count_context(here: Location, state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    lines_by_id = {int(variant_id): counted for variant_id, counted in state["lines"].items()}
    variants, on_hand = selectors.count_expected(location_id=here.pk, variant_ids=lines_by_id)
    lines = []
    for variant_id in reversed(state["order"]):  # the last scanned on top
        if variant_id not in lines_by_id or variant_id not in variants:
            continue
        expected = on_hand.get(variant_id, 0)
        counted = lines_by_id[variant_id]
        lines.append(
            {"variant": variants[variant_id], "expected": expected, "counted": counted, "variance": counted - expected}
        )
    booked = extra.get("booked")
    return {
        "here": here,
        "lines": lines,
        "counted_total": sum(line["counted"] for line in lines),
        "variance_total": sum(line["variance"] for line in lines),
        "finish_key": state["key"],
        "scan_key": _new_key(),
        "booked_variance": sum(row["variance"] for row in booked) if booked else 0,
        **extra,
    }


@never_cache
@require_GET
@role_required(*MANAGERS)
def stock_count(request: HtmxHttpRequest) -> HttpResponse:
    """The counting screen: scan each item; the running variance shows against on hand."""
    here = _here(request)
    state = _count_state(request, here)
    return render(request, "inventory/count.html", _count_context(here, state))


@never_cache
@require_POST
@role_required(*MANAGERS)
def stock_count_scan(request: HtmxHttpRequest) -> HttpResponse:
    """One scan adds one unit of that SKU to the count (a repeated scan key adds nothing)."""
    here = _here(request)
    state = _count_state(request, here)
    code = request.POST.get("code", "").strip()[:100]
    variant = selectors.variant_find(code=code) if code else None
    template = _fragment(request, "inventory/count.html", "count-panel")
    if variant is None:
        error = "Scan or type a SKU or barcode." if not code else f"No product with SKU or barcode {code}."
        return render(request, template, _count_context(here, state, error=error), status=422)
    key = _posted_key(request)
    if key is None or key not in state["seen"]:
        lines = state["lines"]
        lines[str(variant.pk)] = int(lines.get(str(variant.pk), 0)) + 1
        if variant.pk in state["order"]:
            state["order"].remove(variant.pk)
        state["order"].append(variant.pk)
        if key:
            state["seen"] = [*state["seen"], key][-COUNT_SEEN_KEYS:]
        _save_count(request, here, state)
    if not request.htmx:
        return redirect("inventory:count")  # a plain form post (no JavaScript): back to the screen
    message = f"{variant.sku} · {variant.product.name} {variant.colour}/{variant.size}"
    return render(request, template, _count_context(here, state, message=message, last_variant=variant.pk))


@never_cache
@require_POST
@role_required(*MANAGERS)
def stock_count_set(request: HtmxHttpRequest) -> HttpResponse:
    """Correct a line: set what was counted (0 or more); `remove` takes the line out of the count."""
    here = _here(request)
    state = _count_state(request, here)
    template = _fragment(request, "inventory/count.html", "count-panel")
    variant_id = _int(request.POST.get("variant"))
    if variant_id is None or str(variant_id) not in state["lines"]:
        return render(
            request, template, _count_context(here, state, error="That line is not in the count."), status=422
        )
    if request.POST.get("remove"):
        del state["lines"][str(variant_id)]
        state["order"] = [pk for pk in state["order"] if pk != variant_id]
    else:
        counted = _int(request.POST.get("counted"))
        if counted is None or not 0 <= counted <= MAX_QUANTITY:
            error = f"A count is a whole number from 0 to {MAX_QUANTITY}."
            return render(request, template, _count_context(here, state, error=error), status=422)
        state["lines"][str(variant_id)] = counted
    _save_count(request, here, state)
    return render(request, template, _count_context(here, state))


@never_cache
@require_POST
@role_required(*MANAGERS)
def stock_count_finish(request: HtmxHttpRequest) -> HttpResponse:
    """Book the count (services.stock_count with every line) and show each variance.

    The finish button carries the count's key: a second tap (or a replay) shows the booked result
    again instead of booking twice; a key from another count books nothing.
    """
    here = _here(request)
    state = _count_state(request, here)
    template = _fragment(request, "inventory/count.html", "count-panel")
    key = _posted_key(request)
    booked = state.get("booked")
    if key is not None and isinstance(booked, dict) and booked.get("key") == key:
        return render(request, template, _count_context(here, state, booked=_booked_rows(booked)))
    lines = [services.CountLine(variant_id=int(pk), counted=int(counted)) for pk, counted in state["lines"].items()]
    if not lines:
        return render(request, template, _count_context(here, state, error="Nothing counted yet."), status=422)
    if key is None or key != state["key"]:
        error = "This count changed on another screen. Check it and finish again."
        return render(request, template, _count_context(here, state, error=error), status=409)
    _, expected = selectors.count_expected(location_id=here.pk, variant_ids=[line.variant_id for line in lines])
    try:
        result = services.stock_count(
            actor=request.user,
            location_id=here.pk,
            lines=lines,
            idempotency_key=f"page:count:{here.pk}:{key}",
        )
    except ApplicationError as exc:
        return render(request, template, _count_context(here, state, error=exc.message), status=exc.status_code)
    booked = {
        "key": key,
        "lines": [
            [line.variant_id, expected.get(line.variant_id, 0), line.counted, result.variances.get(line.variant_id, 0)]
            for line in lines
        ],
    }
    fresh = {"lines": {}, "order": [], "key": _new_key(), "seen": [], "booked": booked}
    _save_count(request, here, fresh)
    return render(request, template, _count_context(here, fresh, booked=_booked_rows(booked)))


def _booked_rows(booked: dict[str, Any]) -> list[dict[str, Any]]:
    ids = [row[0] for row in booked["lines"]]
    variants = Variant.objects.select_related("product").in_bulk(ids)
    rows = [
        {"variant": variants.get(variant_id), "expected": expected, "counted": counted, "variance": variance}
        for variant_id, expected, counted, variance in booked["lines"]
    ]
    rows.sort(key=lambda row: (-abs(row["variance"]), row["variant"].sku if row["variant"] else ""))
    return rows


@never_cache
@require_POST
@role_required(*MANAGERS)
def stock_count_discard(request: HtmxHttpRequest) -> HttpResponse:
    here = _here(request)
    _save_count(request, here, None)
    template = _fragment(request, "inventory/count.html", "count-panel")
    return render(request, template, _count_context(here, _count_state(request, here), message="Count discarded."))


# --- Ledger ------------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def stock_ledger(request: HtmxHttpRequest, variant_id: int) -> HttpResponse:
    """A variant's movements at a location (default: here), newest first, filterable by reason; paged by id."""
    here = _here(request)
    variant = Variant.objects.select_related("product").filter(pk=variant_id).first()
    if variant is None:
        raise NotFoundError("unknown_variant", "That product does not exist.", {"variant_id": variant_id})
    allowed = user_location_ids(request.user)
    location_id = _int(request.GET.get("location")) or here.pk
    if not can_act_at(request.user, location_id):
        raise ForbiddenError("forbidden_location", "You cannot see the ledger of that location.")
    reason = request.GET.get("reason", "")
    if reason not in MovementReason.values:
        reason = ""
    before = _int(request.GET.get("before"))
    live_since = None if before else _latest_event_id()  # an older page does not follow live changes
    movements = selectors.ledger_list(
        filters=selectors.LedgerFilter(
            sku=variant.sku, location_id=location_id, reason=reason, allowed_location_ids=allowed
        )
    ).order_by("-id")
    if before:
        movements = movements.filter(id__lt=before)
    rows = list(movements[: LEDGER_PAGE + 1])
    older = rows[LEDGER_PAGE - 1]["id"] if len(rows) > LEDGER_PAGE else None
    rows = rows[:LEDGER_PAGE]
    for row in rows:
        row["state_label"] = StockState(row["state"]).label
        row["reason_label"] = MovementReason(row["reason"]).label
    filters = {"location": location_id, "reason": reason}
    context: dict[str, Any] = {
        "here": here,
        "variant": variant,
        "rows": rows,
        "location_id": location_id,
        "reason": reason,
        "reasons": MovementReason.choices,
        "before": before,
        "older_url": f"?{urlencode({**filters, 'before': older})}" if older else None,
        "newest_url": f"?{urlencode(filters)}",
        "level": selectors.level_breakdown(location_id=location_id, variant_id=variant.pk),
        "live_since": live_since,
    }
    if not request.htmx:
        locations = Location.objects.active().order_by("name")
        if allowed is not None:
            locations = locations.filter(pk__in=allowed)
        context["locations"] = list(locations)
        if live_since is not None:
            context["live_url"] = _live_url([f"variant:{variant.pk}"], live_since)
    context["table_url"] = f"{reverse('inventory:ledger', args=[variant.pk])}?{urlencode(filters)}"
    return render(request, _fragment(request, "inventory/ledger.html", "ledger-table"), context)
