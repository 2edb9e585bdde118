"""Customer pages (htmx): search-as-you-type, capture, the clienteling page, reviews, merge, privacy.

Who sees what: store associates and managers handle customers at the till (search, create, view,
edit, consent); managers also review matches, merge, export and erase. Warehouse staff never see
customer personal data (403). Every page also needs a location the user may act for.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from omni.errors import ApplicationError
from omni.http import htmx_toast
from omni.roles import MANAGERS, STORE_STAFF, Role, ensure_location, has_role, is_admin, role_required

from . import selectors, services
from .errors import CustomerInactiveError, DuplicateEmailError, InvalidCustomerDataError
from .forms import CustomerCreateForm, CustomerEditForm, apply_service_errors
from .models import ConsentChannel, CustomerStatus

PICKER_TARGET_MAX = 64


class HtmxHttpRequest(HttpRequest):
    """What django-htmx's middleware adds, for the type checker."""

    htmx: HtmxDetails


def _location_id(request: HtmxHttpRequest) -> int | None:
    """The location the member of staff works for; required except for admins."""
    location = getattr(request, "location", None)
    if not is_admin(request.user):
        ensure_location(request.user, location.pk if location else None)
    return location.pk if location else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


# --- Search and capture --------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def customer_search_page(request: HtmxHttpRequest) -> HttpResponse:
    """The customers screen: search-as-you-type, and a "new customer" form inline."""
    _location_id(request)
    query = request.GET.get("q", "")
    context = {
        "query": query,
        "results": selectors.customer_search(query=query, limit=20),
        "form": CustomerCreateForm(initial=_create_initial(query)),
        "is_manager": has_role(request.user, Role.MANAGER),
    }
    if request.htmx and request.htmx.target == "customer-results":
        return render(request, "customers/search.html#customer-results", context)
    return render(request, "customers/search.html", context)


def _create_initial(query: str) -> dict[str, str]:
    """Prefill the new-customer form from what was searched: digits are a phone, @ an email."""
    query = query.strip()
    if not query:
        return {}
    if "@" in query:
        return {"email": query}
    if any(ch.isdigit() for ch in query) and not any(ch.isalpha() for ch in query):
        return {"phone": query}
    return {"name": query}


def _create_from_form(request: HtmxHttpRequest, form: CustomerCreateForm) -> tuple[Any, DuplicateEmailError | None]:
    """Create the customer if the form is valid; on a service error put it on the form."""
    if not form.is_valid():
        return None, None
    data = form.cleaned_data
    try:
        customer = services.customer_create(
            actor=request.user,
            name=data["name"],
            email=data["email"],
            phone=data["phone"],
            email_consent=data["email_consent"],
            sms_consent=data["sms_consent"],
            source="store",
            location_id=_location_id(request),
        )
    except InvalidCustomerDataError as exc:
        apply_service_errors(form, exc)
        return None, None
    except DuplicateEmailError as exc:
        form.add_error("email", exc.message)
        return None, exc
    return customer, None


@require_POST
@role_required(*STORE_STAFF)
def customer_create(request: HtmxHttpRequest) -> HttpResponse:
    """Inline create on the customers screen; success opens the new customer's page."""
    form = CustomerCreateForm(request.POST)
    customer, duplicate = _create_from_form(request, form)
    if customer is None:
        context = {"form": form, "duplicate_id": duplicate.extra["existing_customer_id"] if duplicate else None}
        return render(request, "customers/search.html#customer-create", context, status=400)
    url = reverse("customers:detail", args=[customer.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- The reusable picker (embedded by the checkout) ----------------------------------------------


def _picker_context(request: HtmxHttpRequest, params: QueryDict) -> dict[str, Any]:
    return picker_context(target=params.get("target", "customer_id"), query=params.get("q", ""))


def picker_context(*, target: str, query: str = "") -> dict[str, Any]:
    """What the picker fragment renders: also used by `{% customer_picker %}` to embed it in a page."""
    target = slugify(target)[:PICKER_TARGET_MAX] or "customer_id"
    return {
        "target": target,
        "query": query,
        "results": selectors.customer_search(query=query, limit=8),
        "form": CustomerCreateForm(initial=_create_initial(query), prefix=f"picker-{target}"),
        "picker_query": urlencode({"target": target}),
    }


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def customer_picker(request: HtmxHttpRequest) -> HttpResponse:
    """GET /customers/picker/?target=<dom id>: see the contract in customers/picker.html."""
    _location_id(request)
    context = _picker_context(request, request.GET)
    if request.htmx and request.htmx.target == f"picker-results-{context['target']}":
        return render(request, "customers/picker.html#picker-results", context)
    if request.htmx:
        return render(request, "customers/picker.html#picker", context)
    return render(request, "customers/picker.html", context)


@require_POST
@role_required(*STORE_STAFF)
def customer_picker_create(request: HtmxHttpRequest) -> HttpResponse:
    """Create inline from the picker; answers with the "picked" fragment that selects them."""
    context = _picker_context(request, request.GET)
    form = CustomerCreateForm(request.POST, prefix=f"picker-{context['target']}")
    customer, duplicate = _create_from_form(request, form)
    if customer is None:
        context.update(form=form, duplicate_id=duplicate.extra["existing_customer_id"] if duplicate else None)
        return render(request, "customers/picker.html#picker-create", context, status=400)
    context["picked"] = customer
    response = render(request, "customers/picker.html#picker-create", context)
    return htmx_toast(response, "Customer created.", "success")


# --- The customer page (clienteling) --------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def customer_detail(request: HtmxHttpRequest, customer_id: int) -> HttpResponse:
    _location_id(request)
    page = selectors.customer_page(customer_id=customer_id)
    if page.customer.status == CustomerStatus.MERGED and page.customer.merged_into_id:
        return redirect("customers:detail", customer_id=page.customer.merged_into_id)
    context = {"page": page, "customer": page.customer, "is_manager": has_role(request.user, Role.MANAGER)}
    return render(request, "customers/detail.html", context)


def _active_customer(customer_id: int) -> Any:
    customer = selectors.customer_get(customer_id=customer_id)
    if customer.status != CustomerStatus.ACTIVE:
        raise CustomerInactiveError(customer.pk, customer.status, customer.merged_into_id)
    return customer


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(*STORE_STAFF)
def customer_edit(request: HtmxHttpRequest, customer_id: int) -> HttpResponse:
    """The profile section as a form (GET) and its save (POST): answers with the section."""
    location_id = _location_id(request)
    customer = _active_customer(customer_id)
    if request.method == "GET":
        if request.GET.get("cancel"):
            return render(request, "customers/detail.html#customer-profile", {"customer": customer})
        form = CustomerEditForm(initial=_edit_initial(customer))
        return render(request, "customers/detail.html#customer-profile-form", {"customer": customer, "form": form})
    form = CustomerEditForm(request.POST)
    if form.is_valid():
        try:
            customer = services.customer_update(
                customer_id=customer.pk, actor=request.user, changes=form.cleaned_data, location_id=location_id
            )
        except InvalidCustomerDataError as exc:
            apply_service_errors(form, exc)
        except DuplicateEmailError as exc:
            form.add_error("email", exc.message)
        else:
            customer = selectors.customer_get(customer_id=customer.pk)
            response = render(request, "customers/detail.html#customer-profile", {"customer": customer})
            return htmx_toast(response, "Saved.", "success")
    context = {"customer": customer, "form": form}
    return render(request, "customers/detail.html#customer-profile-form", context, status=400)


def _edit_initial(customer: Any) -> dict[str, Any]:
    from .normalize import format_phone

    return {
        "name": customer.name,
        "phone": format_phone(customer.phone),
        "email": customer.email,
        "birthday": customer.birthday,
        "anniversary": customer.anniversary,
        "size_tops": customer.size_tops,
        "size_bottoms": customer.size_bottoms,
        "size_dresses": customer.size_dresses,
        "size_shoes": customer.size_shoes,
        "interest_brands": ", ".join(customer.interest_brands),
        "interest_categories": ", ".join(customer.interest_categories),
        "preferred_store_id": customer.preferred_store_id or "",
        "notes": customer.notes,
    }


@require_POST
@role_required(*STORE_STAFF)
def customer_consent(request: HtmxHttpRequest, customer_id: int) -> HttpResponse:
    """Give or withdraw consent for one channel, as the customer said at the till."""
    location_id = _location_id(request)
    channel = request.POST.get("channel", "")
    granted = request.POST.get("granted") == "1"
    error = ""
    if channel not in ConsentChannel.values:
        return HttpResponseBadRequest("Choose email or SMS.")
    try:
        services.customer_set_consent(
            customer_id=customer_id, channel=channel, granted=granted, actor=request.user, source="till",
            location_id=location_id, note=request.POST.get("note", "")[:255],
        )  # fmt: skip
    except InvalidCustomerDataError as exc:
        error = next(iter(exc.extra["fields"].values()))
    page = selectors.customer_page(customer_id=customer_id)
    context = {"page": page, "customer": page.customer, "consent_error": error}
    return render(request, "customers/detail.html#customer-consent", context, status=400 if error else 200)


# --- Managers: reviews, merge, export, erase -----------------------------------------------------


@never_cache
@require_GET
@role_required(*MANAGERS)
def review_list(request: HtmxHttpRequest) -> HttpResponse:
    _location_id(request)
    return render(request, "customers/reviews.html", {"reviews": selectors.match_review_list()})


@require_POST
@role_required(*MANAGERS)
def review_dismiss(request: HtmxHttpRequest, review_id: int) -> HttpResponse:
    _location_id(request)
    try:
        services.match_review_dismiss(review_id=review_id, actor=request.user)
    except ApplicationError as exc:
        return htmx_toast(HttpResponse(status=409), exc.message, "warning")
    return htmx_toast(HttpResponse(""), "Marked as different people.", "success")


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(*MANAGERS)
def customer_merge(request: HtmxHttpRequest) -> HttpResponse:
    """Choose two records, compare them side by side, merge the source into the target."""
    location_id = _location_id(request)
    params = request.POST if request.method == "POST" else request.GET
    source_id, target_id, review_id = _int(params.get("source")), _int(params.get("target")), _int(params.get("review"))
    context: dict[str, Any] = {"source_id": source_id, "target_id": target_id, "review_id": review_id}
    error = ""
    if source_id and target_id:
        if request.method == "POST":
            try:
                merge = services.customer_merge(
                    source_id=source_id, target_id=target_id, actor=request.user, review_id=review_id,
                    location_id=location_id,
                )  # fmt: skip
            except ApplicationError as exc:
                error = exc.message
            else:
                url = reverse("customers:detail", args=[merge.target_id])
                if request.htmx:
                    return htmx_toast(HttpResponseClientRedirect(url), "Records merged.", "success")
                return redirect(url)
        try:
            context["preview"] = selectors.customer_merge_preview(source_id=source_id, target_id=target_id)
        except ApplicationError as exc:
            error = exc.message
    context["error"] = error
    status = 409 if error and request.method == "POST" else 200
    if request.htmx and request.htmx.target == "merge-preview":
        return render(request, "customers/merge.html#merge-preview", context, status=status)
    return render(request, "customers/merge.html", context, status=status)


@never_cache
@require_GET
@role_required(*MANAGERS)
def customer_export(request: HtmxHttpRequest, customer_id: int) -> HttpResponse:
    """Everything held about the customer, as a JSON download (the export is audited)."""
    data = services.customer_export(customer_id=customer_id, actor=request.user, location_id=_location_id(request))
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer_id}.json"'
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(*MANAGERS)
def customer_erase(request: HtmxHttpRequest, customer_id: int) -> HttpResponse:
    """Confirm, then erase personal data (sales and points stay for accounting)."""
    location_id = _location_id(request)
    customer = selectors.customer_get(customer_id=customer_id)
    error = ""
    if request.method == "POST":
        if request.POST.get("confirm") != "erase":
            error = "Tick the box to confirm."
        else:
            services.customer_erase(customer_id=customer.pk, actor=request.user, location_id=location_id)
            url = reverse("customers:detail", args=[customer.pk])
            if request.htmx:
                return htmx_toast(HttpResponseClientRedirect(url), "Personal data erased.", "success")
            return redirect(url)
    status = 400 if error else 200
    return render(request, "customers/erase.html", {"customer": customer, "error": error}, status=status)
