"""Insight pages (htmx).

Who sees what:
- the customer card (segment, predicted value, at-risk, survey, share of wallet) and the after-
  purchase survey: store associates and managers, at a location they work for;
- customer lists and campaign exports, size curves, sell-through and anomalies: managers, for
  their own stores (admins: every store). Chain-wide figures (size curves of the whole chain,
  segment churn) are shown to every manager.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import partial
from typing import Any, cast
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from customers.models import CustomerStatus
from inventory.models import Location, LocationKind
from omni.errors import ApplicationError, ForbiddenError, NotFoundError
from omni.http import htmx_toast
from omni.roles import (
    MANAGERS,
    STORE_STAFF,
    Role,
    can_act_at,
    ensure_location,
    is_admin,
    role_required,
    user_location_ids,
)

from . import merch, selectors, services
from .models import AnomalyKind, InsightRun, RunStatus, Segment, ValueBand
from .tasks import insights_nightly_task

PAGE_SIZE = 50
MAX_BUY_QUANTITY = 100_000


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _working_location_id(request: HttpRequest) -> int | None:
    """The location the member of staff works for; required except for admins."""
    location = getattr(request, "location", None)
    if not is_admin(request.user):
        ensure_location(request.user, location.pk if location else None)
    return location.pk if location else None


def _int(value: str | None, *, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _store_choice(
    request: HttpRequest, *, default_to_current: bool = True
) -> tuple[int | None, frozenset[int] | None, list[Location]]:
    """(chosen store or None = all I may see, the stores I may see (None = all), their rows).

    `?store=` must be a store the user may act for (403 otherwise); `?store=all` (or nothing, for
    admins) covers every store the user may see. Managers default to the store they work for
    (with `default_to_current`; otherwise to every store).
    """
    allowed = user_location_ids(request.user)
    stores = Location.objects.filter(kind=LocationKind.STORE).order_by("name")
    if allowed is not None:
        stores = stores.filter(pk__in=allowed)
    raw = request.GET.get("store", "")
    if raw == "all":
        return None, allowed, list(stores)
    chosen = _int(raw)
    if raw and chosen is None:
        raise ApplicationError("insights_invalid_store", "Choose a store from the list.")
    if chosen is None and default_to_current:
        current = getattr(request, "location", None)
        chosen = current.pk if current is not None and allowed is not None else None
    if chosen is not None and not can_act_at(request.user, chosen):
        raise ForbiddenError("forbidden_location", "You cannot see that store's figures.", {"location_id": chosen})
    return chosen, allowed, list(stores)


# --- the customer card ------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def customer_card(request: HtmxHttpRequest, customer_id: int) -> HttpResponse:
    """The insight card of a customer page (`hx-get`, `hx-trigger="load"`); `?compact=1` is the
    one-line badge for the checkout. A full page when opened directly."""
    _working_location_id(request)
    card = selectors.customer_insight_card(customer_id=customer_id)
    if card is None or card.customer.status == CustomerStatus.ERASED:
        raise NotFoundError("insights_customer_not_found", "No such customer.", {"customer_id": customer_id})
    context = {"card": card, "insight": card.insight, "customer": card.customer}
    if request.GET.get("compact"):
        return render(request, "insights/customer.html#customer-badge", context)
    if request.htmx:
        return render(request, "insights/customer.html#customer-insight", context)
    return render(request, "insights/customer.html", context)


@require_POST
@role_required(*STORE_STAFF)
def wallet_share_record(request: HtmxHttpRequest, customer_id: int) -> HttpResponse:
    """Record the customer's stated share of wallet; answers with the refreshed card."""
    location_id = _working_location_id(request)
    error = ""
    try:
        services.wallet_share_record(
            customer_id=customer_id,
            share_percent=request.POST.get("share_percent", ""),
            actor=request.user,
            location_id=location_id,
        )
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise
        error = exc.message
    card = selectors.customer_insight_card(customer_id=customer_id)
    context: dict[str, Any] = {
        "card": card,
        "insight": card.insight if card else None,
        "customer": card.customer if card else None,
        "wallet_error": error,
    }
    response = render(request, "insights/customer.html#customer-insight", context, status=422 if error else 200)
    if not error:
        htmx_toast(response, "Share of wallet saved.", "success")
    return response


# --- after-purchase survey -----------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(*STORE_STAFF)
def survey(request: HtmxHttpRequest) -> HttpResponse:
    """The after-purchase survey at the till: find the order, hand the tablet over, two taps of 0-10.

    The order must have been sold at (or fulfilled from) a location the member of staff works for.
    """
    location_id = _working_location_id(request)
    order_ref = (request.POST.get("order") or request.GET.get("order") or "").strip()
    context: dict[str, Any] = {"order_ref": order_ref, "scale": range(11), "values": request.POST}
    status = 200
    if order_ref:
        try:
            order = services.survey_order_get(order_ref=order_ref)
            if not is_admin(request.user) and not can_act_at(request.user, order.location_id):
                raise ForbiddenError("forbidden_location", "That order was sold at another store.")
            context["order"] = order
            if request.method == "POST":
                context["response"] = services.survey_record(
                    order_ref=order_ref,
                    satisfaction=request.POST.get("satisfaction"),
                    recommend=request.POST.get("recommend"),
                    comment=request.POST.get("comment", ""),
                    actor=request.user,
                    location_id=location_id,
                )
        except ForbiddenError:
            raise
        except ApplicationError as exc:
            context["error"] = exc.message
            status = exc.status_code if exc.status_code != 404 else 422
            if exc.status_code == 404:
                context.pop("order", None)
    template = "insights/survey.html#survey-form" if request.htmx else "insights/survey.html"
    return render(request, template, context, status=status)


# --- manager lists and exports ---------------------------------------------------------------------------


def _filters(request: HttpRequest) -> tuple[selectors.InsightFilters, list[Location]]:
    chosen, allowed, stores = _store_choice(request)
    segment = request.GET.get("segment", "")
    band = request.GET.get("value_band", "")
    if segment and segment not in Segment.values:
        raise ApplicationError("insights_invalid_segment", "Choose a segment from the list.")
    if band and band not in ValueBand.values:
        raise ApplicationError("insights_invalid_band", "Choose a value band from the list.")
    at_risk = {"1": True, "0": False}.get(request.GET.get("at_risk", ""))
    order = request.GET.get("order", "-clv_12m")
    if order not in selectors.ORDERINGS:
        order = "-clv_12m"
    filters = selectors.InsightFilters(
        segment=segment,
        value_band=band,
        at_risk=at_risk,
        location_id=chosen,
        location_ids=allowed,
        order=order,
    )
    return filters, stores


@never_cache
@require_GET
@role_required(*MANAGERS)
def customer_list(request: HtmxHttpRequest) -> HttpResponse:
    """Customers by segment and predicted value, filterable; the list is a fragment for htmx."""
    filters, stores = _filters(request)
    total = selectors.customer_insight_count(filters=filters)
    last_page = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, _int(request.GET.get("page"), default=1) or 1), last_page)  # ?page=1e20: a 500 before
    rows = selectors.customer_insight_list(filters=filters, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    query = {k: v for k, v in request.GET.items() if k != "page" and v}
    context = {
        "rows": rows,
        "total": total,
        "page": page,
        "has_next": page * PAGE_SIZE < total,
        "query": urlencode(query),
        "filters": filters,
        "stores": stores,
        "store_value": request.GET.get("store", "") or (str(filters.location_id) if filters.location_id else "all"),
        "segments": Segment.choices,
        "bands": [choice for choice in ValueBand.choices if choice[0]],
        "run": selectors.insight_run_latest(),
        "can_run": is_admin(request.user),
    }
    if request.htmx and request.htmx.target == "insight-list":
        return render(request, "insights/customers.html#insight-list", context)
    context["overview"] = selectors.segment_overview(filters=filters)
    return render(request, "insights/customers.html", context)


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): a leading = + - @ gets a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@role_required(*MANAGERS)
def customer_export(request: HtmxHttpRequest) -> HttpResponse:
    """CSV of the filtered customers who consent to the channel (email or sms), for a campaign.

    Only active customers with current consent and a contact for the channel are exported; every
    export is recorded (who, when, filters, rows)."""
    location_id = _working_location_id(request)
    filters, _ = _filters(request)
    channel = request.GET.get("channel", "email")
    if channel not in ("email", "sms"):
        raise ApplicationError("insights_invalid_channel", "Export for email or sms.")
    count = selectors.segment_export_queryset(filters=filters, channel=channel).count()
    services.segment_export_log(
        channel=channel, filters=filters.as_dict(), row_count=count, actor=request.user, location_id=location_id
    )
    contact = "phone" if channel == "sms" else "email"
    header = ("customer_id", "name", contact, "segment", "value_band", "at_risk", "clv_12m", "p_alive")
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(header)
        for row in selectors.segment_export_rows(filters=filters, channel=channel):
            # Phone numbers are E.164 (+ and digits, validated by customers): kept as they are.
            yield writer.writerow([value if header[i] == "phone" else _csv_cell(value) for i, value in enumerate(row)])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d")
    name = f"customers-{filters.segment or 'all'}-{channel}-{stamp}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    # role_required is typed for HttpResponse; a streaming response is served the same way.
    return cast("HttpResponse", response)


# --- merchandise ---------------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*MANAGERS)
def size_curves(request: HtmxHttpRequest) -> HttpResponse:
    """The share of demand per size of a category, at a store or across the chain, and the split
    of a buy of N units. Every manager may see the chain's curve."""
    run = selectors.insight_run_latest()
    chosen, _, stores = _store_choice(request, default_to_current=False)
    categories = selectors.size_demand_categories(run=run) if run else []
    category = request.GET.get("category") or (categories[0] if categories else "")
    quantity = _int(request.GET.get("quantity"), default=100)
    error = ""
    if quantity is None or not 0 <= quantity <= MAX_BUY_QUANTITY:
        error = f"Enter a quantity from 0 to {MAX_BUY_QUANTITY:,}."
        quantity = 0
    view = selectors.size_curve_for(run=run, category=category, location_id=chosen) if run and category else None
    split = merch.buy_split(view.curve, quantity) if view else []
    context = {
        "run": run,
        "categories": categories,
        "category": category,
        "stores": stores,
        "store_value": str(chosen) if chosen else "all",
        "quantity": quantity,
        "error": error,
        "view": view,
        "rows": [
            {
                "size": line.size,
                "sold": share.sold,
                "lost": share.lost,
                "percent": line.share * 100,
                "units": line.units,
            }
            for share, line in zip(view.curve if view else [], split, strict=True)
        ],
        "chart": {
            "labels": [line.size for line in split],
            "shares": [round(line.share * 100, 1) for line in split],
            "sold": [share.sold for share in view.curve] if view else [],
            "lost": [share.lost for share in view.curve] if view else [],
        },
        "lost_demand_recorded": selectors.lost_demand_recorded(),
    }
    template = "insights/size_curves.html#size-curve" if request.htmx else "insights/size_curves.html"
    return render(request, template, context, status=422 if error else 200)


@never_cache
@require_GET
@role_required(*MANAGERS)
def sell_through(request: HtmxHttpRequest) -> HttpResponse:
    """Sell-through and weeks of cover per product and store; markdown candidates first."""
    chosen, allowed, stores = _store_choice(request)
    run = selectors.insight_run_latest()
    markdown_only = request.GET.get("markdown") == "1"
    category = request.GET.get("category", "")[:50]
    rows = (
        selectors.stock_performance_list(
            run=run, location_ids=allowed, location_id=chosen, category=category, markdown_only=markdown_only
        )
        if run
        else []
    )
    context = {
        "run": run,
        "rows": rows,
        "stores": stores,
        "store_value": str(chosen) if chosen else "all",
        "markdown_only": markdown_only,
        "category": category,
    }
    template = "insights/sell_through.html#stock-performance" if request.htmx else "insights/sell_through.html"
    return render(request, template, context)


# --- anomalies -----------------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*MANAGERS)
def anomalies(request: HtmxHttpRequest) -> HttpResponse:
    """Unusual changes found by the nightly run at my stores (and chain-wide), newest first."""
    _working_location_id(request)
    include_acknowledged = request.GET.get("all") == "1"
    rows = selectors.anomaly_list(
        location_ids=user_location_ids(request.user), include_acknowledged=include_acknowledged
    )
    context = {"rows": rows, "include_acknowledged": include_acknowledged, "kinds": AnomalyKind}
    template = "insights/anomalies.html#anomaly-list" if request.htmx else "insights/anomalies.html"
    return render(request, template, context)


@require_POST
@role_required(*MANAGERS)
def anomaly_acknowledge(request: HtmxHttpRequest, anomaly_id: int) -> HttpResponse:
    def allowed(anomaly: Any) -> bool:
        return anomaly.location_id is None or is_admin(request.user) or can_act_at(request.user, anomaly.location_id)

    anomaly = services.anomaly_acknowledge(anomaly_id=anomaly_id, actor=request.user, allowed=allowed)
    response = render(request, "insights/anomalies.html#anomaly-row", {"anomaly": anomaly})
    return htmx_toast(response, "Marked as seen.", "success")


# --- run now (admins) ------------------------------------------------------------------------------------


@require_POST
@role_required(Role.ADMIN)
def run_now(request: HtmxHttpRequest) -> HttpResponse:
    """Queue an insight run now (after this request commits); answers with a status that polls
    `run_status` until the run is over (the button's place on the page)."""
    after = InsightRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    transaction.on_commit(partial(insights_nightly_task.delay, triggered_by=request.user.get_username()))
    return render(request, "insights/customers.html#run-status", {"after": after, "run": None, "queued": True})


@require_GET
@role_required(Role.ADMIN)
def run_status(request: HtmxHttpRequest) -> HttpResponse:
    """Where the run queued after run `?after=` is: waiting, running (for how long), failed, or
    done (the page reloads to show the new figures)."""
    after = _int(request.GET.get("after"), default=0) or 0
    run = InsightRun.objects.filter(pk__gt=after).order_by("pk").first()
    if run is not None and run.status == RunStatus.DONE:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return htmx_toast(response, "Insights refreshed.", "success")
    elapsed = int((timezone.now() - run.started_at).total_seconds()) if run is not None else 0
    return render(request, "insights/customers.html#run-status", {"after": after, "run": run, "elapsed": elapsed})
