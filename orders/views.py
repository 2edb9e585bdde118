"""Orders' pages (htmx): the sale on the tablet, receipts, orders, fulfilment, pickups, returns.

Each view parses, calls a service or a selector, and renders. A POST answers with the updated
fragment; a domain error re-renders the fragment with the message in place (status 400/409, which
omni.js swaps). Every view checks the role (role_required) and the location it acts for.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from inventory.models import Location, Variant
from omni.errors import ApplicationError, ForbiddenError
from omni.http import htmx_toast
from omni.roles import (
    STOCK_STAFF,
    STORE_STAFF,
    Role,
    can_act_at,
    ensure_location,
    has_role,
    role_required,
    user_location_ids,
)

from . import selectors, services
from .errors import InvalidOrderError, OrderNotFoundError
from .models import DiscountKind, Fulfilment, FulfilmentKind, Order, OrderEvent, Status, Tender
from .pricing import Discount, parse_money
from .terminal import terminal

# --- Helpers ---------------------------------------------------------------------------------------------


def _location(request: HttpRequest) -> Location:
    location = getattr(request, "location", None)
    if location is None:
        raise ForbiddenError("no_location", "Choose the location you work for first (top bar).")
    ensure_location(request.user, location.pk)
    return location


def _int(value: Any, *, field: str = "value") -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidOrderError(f"{field.replace('_', ' ').capitalize()}: give a whole number.") from None


def _fragment(request: HttpRequest, template: str, fragment: str) -> str:
    return f"{template}#{fragment}" if getattr(request, "htmx", False) else template


# --- The sale (/sell/) ----------------------------------------------------------------------------------

SELL = "orders/sell.html"


def _sale(request: HttpRequest, *, status: int = 200, error: str = "", **extra: Any) -> HttpResponse:
    """Render the sale: the whole page, or the #sale fragment for htmx."""
    location = _location(request)
    view = selectors.cart_view(user=request.user, location=location)
    context = {
        "view": view,
        "cart": view.cart,
        "location": location,
        "error": error,
        "kinds": FulfilmentKind.choices,
        "is_manager": has_role(request.user, Role.MANAGER),
        "discount_kinds": DiscountKind.choices,
        **extra,
    }
    form = context.get("form")
    context["receipt_email"] = (form.get("contact_email", "") if form else "") or (
        view.cart.customer.email if view.cart.customer else ""
    )
    return render(request, _fragment(request, SELL, "sale"), context, status=status)


def _sale_or_error(request: HttpRequest, action: Any, **extra: Any) -> HttpResponse:
    try:
        action()
    except ApplicationError as error:
        return _sale(
            request,
            status=error.status_code if error.status_code in (400, 409) else 409,
            error=error.message,
            error_code=error.code,
            error_extra=error.extra,
        )
    return _sale(request, **extra)


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def sell(request: HttpRequest) -> HttpResponse:
    return _sale(request)


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def sell_search(request: HttpRequest) -> HttpResponse:
    """Products by barcode, SKU or name, to add to the cart (the #search-results fragment)."""
    query = (request.GET.get("q") or request.GET.get("code") or "").strip()[:100]
    results: list[Variant] = []
    if len(query) >= 2:
        exact = list(Variant.objects.select_related("product").filter(is_active=True, barcode=query)[:1]) or list(
            Variant.objects.select_related("product").filter(is_active=True, sku__iexact=query)[:1]
        )
        results = exact or list(
            Variant.objects.select_related("product")
            .filter(is_active=True, product__name__icontains=query)
            .order_by("product__name", "colour", "size")[:12]
        )
    hints = selectors.stock_hints(variant_ids=[v.pk for v in results], location_id=_location(request).pk)
    for variant in results:
        variant.stock_hint = hints.get(variant.pk, selectors.StockHint(0, 0))  # type: ignore[attr-defined]
    context = {"results": results, "query": query, "kinds": FulfilmentKind.choices}
    return render(request, "orders/sell.html#search-results", context)


@require_POST
@role_required(*STORE_STAFF)
def sell_scan(request: HttpRequest) -> HttpResponse:
    """A scan (or a typed SKU) adds one unit, taken now; anything else shows matching products."""
    location = _location(request)
    code = request.POST.get("code", "").strip()[:64]
    variant = (
        Variant.objects.filter(is_active=True, barcode=code).first()
        or Variant.objects.filter(is_active=True, sku__iexact=code).first()
        if code
        else None
    )
    if variant is None:
        return _sale(
            request,
            status=400,
            error=f"No product with barcode or SKU “{code}”: search by name below."
            if code
            else "Scan a barcode or type a SKU.",
        )
    cart = services.cart_get_or_create(user=request.user, location_id=location.pk)
    return _sale_or_error(
        request,
        lambda: services.cart_add(actor=request.user, cart_id=cart.pk, variant_id=variant.pk),
        clear_results=True,
    )


@require_POST
@role_required(*STORE_STAFF)
def sell_add(request: HttpRequest) -> HttpResponse:
    location = _location(request)
    cart = services.cart_get_or_create(user=request.user, location_id=location.pk)

    def add() -> None:
        services.cart_add(
            actor=request.user,
            cart_id=cart.pk,
            variant_id=_int(request.POST.get("variant_id"), field="product"),
            quantity=_int(request.POST.get("quantity", "1"), field="quantity"),
            kind=request.POST.get("kind", FulfilmentKind.TAKE_NOW),
        )

    return _sale_or_error(request, add, clear_results=True)


@require_POST
@role_required(*STORE_STAFF)
def sell_line(request: HttpRequest, line_id: int) -> HttpResponse:
    """Change a line: quantity (or +1 / -1), fulfilment, pickup store."""
    location = _location(request)
    cart = services.cart_get_or_create(user=request.user, location_id=location.pk)

    def change() -> None:
        line = cart.lines.filter(pk=line_id).first()
        if line is None:
            raise InvalidOrderError("That line is no longer in the cart.")
        quantity = line.quantity
        if "quantity" in request.POST:
            quantity = _int(request.POST["quantity"], field="quantity")
        step = request.POST.get("step")
        if step in ("1", "-1"):
            quantity = line.quantity + int(step)
        if quantity <= 0:
            services.cart_line_remove(actor=request.user, cart_id=cart.pk, line_id=line_id)
            return
        pickup = request.POST.get("pickup_location_id")
        services.cart_line_update(
            actor=request.user,
            cart_id=cart.pk,
            line_id=line_id,
            quantity=quantity,
            kind=request.POST.get("kind") or line.kind,
            pickup_location_id=_int(pickup, field="pickup store") if pickup else None,
        )

    return _sale_or_error(request, change)


@require_POST
@role_required(*STORE_STAFF)
def sell_line_remove(request: HttpRequest, line_id: int) -> HttpResponse:
    cart = services.cart_get_or_create(user=request.user, location_id=_location(request).pk)
    return _sale_or_error(
        request, lambda: services.cart_line_remove(actor=request.user, cart_id=cart.pk, line_id=line_id)
    )


@require_POST
@role_required(*STORE_STAFF)
def sell_line_hold(request: HttpRequest, line_id: int) -> HttpResponse:
    cart = services.cart_get_or_create(user=request.user, location_id=_location(request).pk)
    return _sale_or_error(
        request, lambda: services.cart_line_rehold(actor=request.user, cart_id=cart.pk, line_id=line_id)
    )


def _discount(request: HttpRequest) -> Discount:
    kind = request.POST.get("discount_kind", "")
    raw = request.POST.get("discount_value", "").strip()
    if not raw or kind == "":
        return Discount()
    if kind not in DiscountKind.values:
        raise InvalidOrderError("Choose percent or amount.")
    return Discount(kind, parse_money(raw, field="discount"))


def _approver(request: HttpRequest, location: Location) -> Any:
    """The approving manager from the form: a manager's own session, or their credentials or PIN."""
    username = request.POST.get("manager_username", "").strip()
    password = request.POST.get("manager_password", "")
    pin = request.POST.get("manager_pin", "").strip()
    if username or pin:
        return services.manager_approve(username=username, password=password, pin=pin, location_id=location.pk)
    if has_role(request.user, Role.MANAGER) and can_act_at(request.user, location.pk):
        return request.user
    return None


@require_POST
@role_required(*STORE_STAFF)
def sell_line_discount(request: HttpRequest, line_id: int) -> HttpResponse:
    location = _location(request)
    cart = services.cart_get_or_create(user=request.user, location_id=location.pk)

    def apply() -> None:
        services.cart_set_line_discount(
            actor=request.user,
            cart_id=cart.pk,
            line_id=line_id,
            discount=_discount(request),
            approver=_approver(request, location),
        )

    return _discount_response(request, apply, target=f"line-{line_id}")


@require_POST
@role_required(*STORE_STAFF)
def sell_order_discount(request: HttpRequest) -> HttpResponse:
    location = _location(request)
    cart = services.cart_get_or_create(user=request.user, location_id=location.pk)

    def apply() -> None:
        services.cart_set_order_discount(
            actor=request.user, cart_id=cart.pk, discount=_discount(request), approver=_approver(request, location)
        )

    return _discount_response(request, apply, target="order")


def _discount_response(request: HttpRequest, apply: Any, *, target: str) -> HttpResponse:
    """On 'approval required' the sale re-renders with the manager approval form for `target`."""
    try:
        apply()
    except ApplicationError as error:
        asks = error.code in ("approval_required", "approval_rejected")
        return _sale(
            request,
            status=422 if asks else 400,  # 422: the form comes back with the manager's fields (swapped)
            error=error.message,
            approval_line_id=int(target[5:]) if asks and target.startswith("line-") else None,
            approval_order=asks and target == "order",
            approval_kind=request.POST.get("discount_kind", ""),
            approval_value=request.POST.get("discount_value", ""),
        )
    return _sale(request)


@require_POST
@role_required(*STORE_STAFF)
def sell_customer(request: HttpRequest) -> HttpResponse:
    """The customer picker chose (or cleared) the customer for this sale."""
    cart = services.cart_get_or_create(user=request.user, location_id=_location(request).pk)
    raw = request.POST.get("customer_id", "").strip()
    return _sale_or_error(
        request,
        lambda: services.cart_set_customer(
            actor=request.user, cart_id=cart.pk, customer_id=_int(raw, field="customer") if raw else None
        ),
    )


@require_POST
@role_required(*STORE_STAFF)
def sell_address(request: HttpRequest) -> HttpResponse:
    cart = services.cart_get_or_create(user=request.user, location_id=_location(request).pk)
    address = services.Address(
        name=request.POST.get("ship_name", ""),
        line1=request.POST.get("ship_line1", ""),
        line2=request.POST.get("ship_line2", ""),
        city=request.POST.get("ship_city", ""),
        region=request.POST.get("ship_region", ""),
        postcode=request.POST.get("ship_postcode", ""),
        country=request.POST.get("ship_country", "US"),
    )
    services.cart_set_address(actor=request.user, cart_id=cart.pk, address=address)
    # Saved as typed (checked when the order is placed): nothing on the screen changes, so the pay
    # panel - and what the associate is typing into it - is left alone.
    return HttpResponse(status=204)


@require_POST
@role_required(*STORE_STAFF)
def sell_clear(request: HttpRequest) -> HttpResponse:
    """Leave the sale: every hold is released."""
    cart = services.cart_get_or_create(user=request.user, location_id=_location(request).pk)
    services.cart_clear(actor=request.user, cart_id=cart.pk)
    return htmx_toast(_sale(request), "Sale cleared; held stock was released.", "info")


def _money_field(request: HttpRequest, name: str) -> Decimal | None:
    raw = request.POST.get(name, "").strip()
    if not raw:
        return None
    value = parse_money(raw, field=name)
    return value if value > 0 else None


def _tenders(request: HttpRequest, *, reference: str) -> list[services.TenderInput]:
    """Split tenders from the checkout form: card, cash, gift card / store credit, points."""
    tenders: list[services.TenderInput] = []
    card_amount = _money_field(request, "card_amount")
    if card_amount:
        charge = terminal().charge(
            amount=card_amount,
            reference=reference,
            entered_ref=request.POST.get("card_ref", ""),
            entered_last4=request.POST.get("card_last4", ""),
        )
        tenders.append(
            services.TenderInput(
                Tender.CARD,
                card_amount,
                card_last4=charge.last4,
                terminal_ref=charge.terminal_ref,
                card_brand=charge.brand,
            )
        )
    cash_amount = _money_field(request, "cash_amount")
    if cash_amount:
        tendered = _money_field(request, "cash_tendered") or cash_amount
        tenders.append(services.TenderInput(Tender.CASH, cash_amount, cash_tendered=tendered))
    gift_amount = _money_field(request, "gift_amount")
    if gift_amount:
        tenders.append(
            services.TenderInput(Tender.GIFT_CARD, gift_amount, gift_card_code=request.POST.get("gift_code", ""))
        )
    points_raw = request.POST.get("points", "").strip()
    if points_raw:
        from customers.services import loyalty_points_value

        points = _int(points_raw, field="points")
        if points > 0:
            tenders.append(
                services.TenderInput(Tender.LOYALTY, loyalty_points_value(points=points), loyalty_points=points)
            )
    return tenders


@require_POST
@role_required(*STORE_STAFF)
def sell_checkout(request: HttpRequest) -> HttpResponse:
    """Pay and place. The form carries the cart's checkout key: a double tap or a retry finds the
    order already placed and shows its receipt."""
    location = _location(request)
    cart = services.cart_get_or_create(user=request.user, location_id=location.pk)
    key = request.POST.get("checkout_key", "")
    placed = Order.objects.filter(idempotency_key=key).first() if key else None
    if placed is not None:
        return _to_receipt(request, placed)
    try:
        tenders = _tenders(request, reference=key)
        result = services.cart_checkout(
            actor=request.user,
            cart_id=cart.pk,
            checkout_key=key,
            tenders=tenders,
            contact_email=request.POST.get("contact_email", ""),
        )
    except ApplicationError as error:
        return _sale(
            request,
            status=409 if error.status_code == 409 else 400,
            error=error.message,
            checkout_error=True,
            form=request.POST,
        )
    return _to_receipt(request, result.order)


def _to_receipt(request: HttpRequest, order: Order) -> HttpResponse:
    url = reverse("orders:receipt", args=[order.number])
    return HttpResponseClientRedirect(url) if getattr(request, "htmx", False) else redirect(url)


# --- Receipt ----------------------------------------------------------------------------------------------


def _order_for(request: HttpRequest, number: str) -> Order:
    order = selectors.order_get(number=number)
    if not selectors.order_visible_to(order=order, location_ids=user_location_ids(request.user)):
        raise OrderNotFoundError(number)
    return order


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def receipt(request: HttpRequest, number: str) -> HttpResponse:
    order = _order_for(request, number)
    return render(request, "orders/receipt.html", {"order": order, "sent_to": request.GET.get("sent", "")})


@require_POST
@role_required(*STORE_STAFF)
def receipt_email(request: HttpRequest, number: str) -> HttpResponse:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from .tasks import send_receipt

    order = _order_for(request, number)
    email = request.POST.get("email", "").strip() or order.contact_email
    try:
        validate_email(email)
    except ValidationError:
        context = {"order": order, "email_error": "Enter an email address.", "email": email}
        return render(request, _fragment(request, "orders/receipt.html", "receipt-email"), context, status=400)
    send_receipt.delay(order_id=order.pk, email=email)
    context = {"order": order, "sent_to": email}
    response = render(request, _fragment(request, "orders/receipt.html", "receipt-email"), context)
    return htmx_toast(response, f"Receipt sent to {email}.", "success")


# --- Orders ---------------------------------------------------------------------------------------------------


ORDERS_PER_PAGE = 100


def _page(raw: str | None) -> int:
    """A page number from the query string: 1 to 1,000, 1 for anything else."""
    text = (raw or "").strip()
    return min(int(text), 1000) if text.isascii() and text.isdigit() and 0 < len(text) <= 4 and int(text) else 1


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def order_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    filters = selectors.OrderFilter(
        location_ids=user_location_ids(request.user),
        status=status if status in Status.values else "",
        query=request.GET.get("q", "").strip()[:100],
    )
    page = _page(request.GET.get("page"))
    orders = selectors.order_list(filters=filters, limit=ORDERS_PER_PAGE + 1, offset=(page - 1) * ORDERS_PER_PAGE)
    context = {
        "orders": orders[:ORDERS_PER_PAGE],
        "filters": filters,
        "statuses": Status.choices,
        "page": page,
        "older_page": page + 1 if len(orders) > ORDERS_PER_PAGE else None,
    }
    return render(request, _fragment(request, "orders/order_list.html", "order-rows"), context)


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order = _order_for(request, number)
    return render(request, "orders/order_detail.html", _detail_context(request, order))


def _detail_context(request: HttpRequest, order: Order, **extra: Any) -> dict[str, Any]:
    cancellable = [
        line
        for line in order.lines.all()
        if line.kind != FulfilmentKind.TAKE_NOW
        and line.open_quantity
        and next(f for f in order.fulfilments.all() if f.pk == line.fulfilment_id).status
        in ("placed", "allocated", "picking", "packed", "ready_for_pickup")
    ]
    # The fulfilment screen refuses other locations' work (_fulfilment_for, at="any"): link only what opens.
    openable = {
        f.pk
        for f in order.fulfilments.all()
        if any(can_act_at(request.user, location_id) for location_id in selectors.fulfilment_locations(f))
    }
    return {
        "order": order,
        "cancellable": cancellable,
        "can_cancel": has_role(request.user, *STORE_STAFF),
        "openable_fulfilments": openable,
        **extra,
    }


@require_POST
@role_required(*STORE_STAFF)
def order_cancel(request: HttpRequest, number: str) -> HttpResponse:
    order = _order_for(request, number)
    line_id = request.POST.get("line_id", "").strip()
    try:
        lines = None
        if line_id:
            lines = {_int(line_id, field="line"): _int(request.POST.get("quantity", "1"), field="quantity")}
        services.order_cancel(
            actor=request.user,
            order_id=order.pk,
            lines=lines,
            reason=request.POST.get("reason", "")[:200],
            location_id=_location(request).pk,
        )
    except ApplicationError as error:
        context = _detail_context(request, order, error=error.message)
        return render(
            request,
            _fragment(request, "orders/order_detail.html", "order-main"),
            context,
            status=409 if error.status_code == 409 else 400,
        )
    order = selectors.order_get(number=order.pk)
    response = render(
        request, _fragment(request, "orders/order_detail.html", "order-main"), _detail_context(request, order)
    )
    return htmx_toast(response, "Cancelled; the refund is recorded against the original payment.", "success")


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def customer_history(request: HttpRequest, customer_id: int) -> HttpResponse:
    """The customer page's order history (loaded with hx-get by customers/detail.html)."""
    try:
        from customers.selectors import customer_history_ids

        ids = list(customer_history_ids(customer_id=customer_id))
    except ImportError:  # pragma: no cover - customers always ships it
        ids = [customer_id]
    orders = selectors.orders_for_customers(customer_ids=ids, limit=20)
    # Customers shop at every store, but an order page opens only where order_visible_to allows
    # (_order_for answers 404 otherwise): the others are listed without a link.
    location_ids = user_location_ids(request.user)
    openable = {order.pk for order in orders if selectors.order_visible_to(order=order, location_ids=location_ids)}
    context = {"orders": orders, "openable_orders": openable, "customer_id": customer_id}
    return render(request, "orders/customer_history.html", context)


# --- Fulfilment -----------------------------------------------------------------------------------------------


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def fulfil_queue(request: HttpRequest) -> HttpResponse:
    location = _location(request)
    queue = selectors.fulfilment_queue(location_id=location.pk)
    context = {"queue": queue, "location": location, "arrived_short": _arrived_short(queue.pickups)}
    return render(request, "orders/fulfil_queue.html", context)


def _arrived_short(pickups: list[Fulfilment]) -> set[int]:
    """The pickups whose transfer arrived short (the sync noted it on the order). One query."""
    return set(
        OrderEvent.objects.filter(
            fulfilment__in=[f.pk for f in pickups], kind=services.SHORT_TRANSFER_EVENT
        ).values_list("fulfilment_id", flat=True)
    )


def _fulfilment_for(request: HttpRequest, fulfilment_id: int, *, at: str = "source") -> Fulfilment:
    fulfilment = selectors.fulfilment_get(fulfilment_id=fulfilment_id)
    allowed = (
        selectors.fulfilment_locations(fulfilment)
        if at == "any"
        else ({fulfilment.source_location_id} if at == "source" else {fulfilment.handover_location_id})
    )
    if not any(can_act_at(request.user, location_id) for location_id in allowed):
        raise ForbiddenError("forbidden_location", "This is another location's work.")
    return fulfilment


FULFIL = "orders/fulfil_detail.html"


def _fulfil_page(request: HttpRequest, fulfilment_id: int, *, status: int = 200, **extra: Any) -> HttpResponse:
    fulfilment = _fulfilment_for(request, fulfilment_id, at="any")
    open_states = (Status.ALLOCATED, Status.PICKING, Status.PACKED)
    waiting = fulfilment.needs_transfer and fulfilment.stock_location_id != fulfilment.pickup_location_id
    context = {
        "f": fulfilment,
        "order": fulfilment.order,
        "lines": list(fulfilment.lines.all()),
        "can_pick": fulfilment.status in (Status.ALLOCATED, Status.PICKING)
        and (fulfilment.kind == FulfilmentKind.SHIP or (fulfilment.kind == FulfilmentKind.COLLECT and not waiting)),
        "can_ready": fulfilment.kind == FulfilmentKind.COLLECT and fulfilment.status in open_states,
        "waiting_transfer": waiting,
        # The sync's note when the transfer arrived short (it then waits for a person, not the truck).
        "short_transfer": OrderEvent.objects.filter(fulfilment=fulfilment, kind=services.SHORT_TRANSFER_EVENT).first()
        if waiting
        else None,
        "is_manager": has_role(request.user, Role.MANAGER),
        **extra,
    }
    return render(request, _fragment(request, FULFIL, "fulfilment"), context, status=status)


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def fulfil_detail(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    return _fulfil_page(request, fulfilment_id)


def _fulfil_action(request: HttpRequest, fulfilment_id: int, action: Any, *, at: str, done: str) -> HttpResponse:
    _fulfilment_for(request, fulfilment_id, at=at)
    try:
        message = action() or done
    except ApplicationError as error:
        return _fulfil_page(
            request, fulfilment_id, status=409 if error.status_code == 409 else 400, error=error.message
        )
    return htmx_toast(_fulfil_page(request, fulfilment_id, flash=message), message, "success")


@require_POST
@role_required(*STOCK_STAFF)
def fulfil_pick(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    def pick() -> str:
        result = services.fulfilment_pick(
            actor=request.user, fulfilment_id=fulfilment_id, code=request.POST.get("code", "")
        )
        left = "All picked: pack it." if result.complete else ""
        return f"{result.line.sku}: {result.line.picked_quantity} of {result.line.open_quantity}. {left}".strip()

    return _fulfil_action(request, fulfilment_id, pick, at="source", done="Picked.")


@require_POST
@role_required(*STOCK_STAFF)
def fulfil_pack(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    return _fulfil_action(
        request,
        fulfilment_id,
        lambda: services.fulfilment_pack(actor=request.user, fulfilment_id=fulfilment_id) and None,
        at="source",
        done="Packed.",
    )


@require_POST
@role_required(*STOCK_STAFF)
def fulfil_ship(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    return _fulfil_action(
        request,
        fulfilment_id,
        lambda: (
            services.fulfilment_ship(
                actor=request.user,
                fulfilment_id=fulfilment_id,
                carrier=request.POST.get("carrier", ""),
                tracking_number=request.POST.get("tracking_number", ""),
            )
            and None
        ),
        at="source",
        done="Shipped; the customer was emailed the tracking number.",
    )


@require_POST
@role_required(*STOCK_STAFF)
def fulfil_deliver(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    return _fulfil_action(
        request,
        fulfilment_id,
        lambda: services.fulfilment_deliver(actor=request.user, fulfilment_id=fulfilment_id) and None,
        at="source",
        done="Marked delivered.",
    )


@require_POST
@role_required(*STORE_STAFF)
def fulfil_ready(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    return _fulfil_action(
        request,
        fulfilment_id,
        lambda: services.fulfilment_mark_ready(actor=request.user, fulfilment_id=fulfilment_id) and None,
        at="pickup",
        done="Ready for pickup; the customer was emailed a collection code.",
    )


@require_POST
@role_required(*STORE_STAFF)
def fulfil_collect(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    return _fulfil_action(
        request,
        fulfilment_id,
        lambda: (
            services.fulfilment_collect(
                actor=request.user, fulfilment_id=fulfilment_id, code=request.POST.get("code", "")
            )
            and None
        ),
        at="pickup",
        done="Collected. Hand the items over.",
    )


@require_POST
@role_required(*STORE_STAFF)
def fulfil_resend_code(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    if not has_role(request.user, Role.MANAGER):
        raise ForbiddenError("forbidden_role", "A manager sends a new collection code.")
    return _fulfil_action(
        request,
        fulfilment_id,
        lambda: services.fulfilment_resend_code(actor=request.user, fulfilment_id=fulfilment_id) and None,
        at="pickup",
        done="A new collection code was emailed.",
    )


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def pick_list(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    fulfilment = _fulfilment_for(request, fulfilment_id, at="source")
    return render(request, "orders/print_pick_list.html", {"f": fulfilment, "lines": list(fulfilment.lines.all())})


@never_cache
@require_GET
@role_required(*STOCK_STAFF)
def packing_slip(request: HttpRequest, fulfilment_id: int) -> HttpResponse:
    fulfilment = _fulfilment_for(request, fulfilment_id, at="source")
    return render(request, "orders/print_packing_slip.html", {"f": fulfilment, "lines": list(fulfilment.lines.all())})


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def pickups(request: HttpRequest) -> HttpResponse:
    location = _location(request)
    queue = selectors.fulfilment_queue(location_id=location.pk)
    context = {"pickups": queue.pickups, "location": location, "arrived_short": _arrived_short(queue.pickups)}
    return render(request, "orders/pickups.html", context)


# --- Returns ---------------------------------------------------------------------------------------------------

RETURNS = "orders/returns.html"


@never_cache
@require_GET
@role_required(*STORE_STAFF)
def returns(request: HttpRequest) -> HttpResponse:
    """Find an order from any channel and store (by number), then choose what comes back."""
    location = _location(request)
    query = request.GET.get("q", "").strip()[:40]
    order = None
    error = ""
    if query:
        try:
            order = selectors.order_get(number=query)
        except OrderNotFoundError:
            error = f"No order {query}. Check the number on the receipt."
    context = {
        "order": order,
        "query": query,
        "error": error,
        "location": location,
        "returnable": _returnable(order),
        "return_key": uuid.uuid4().hex,
    }
    return render(request, _fragment(request, RETURNS, "return-form"), context)


def _returnable(order: Order | None) -> list[Any]:
    if order is None:
        return []
    statuses = {f.pk: f.status for f in order.fulfilments.all()}
    lines = [
        line
        for line in order.lines.all()
        if line.open_quantity and statuses.get(line.fulfilment_id) in ("shipped", "delivered", "collected")
    ]
    for line in lines:
        line.return_choices = range(1, line.open_quantity + 1)  # type: ignore[attr-defined]
    return lines


@require_POST
@role_required(*STORE_STAFF)
def return_submit(request: HttpRequest, number: str) -> HttpResponse:
    location = _location(request)
    order = selectors.order_get(number=number)
    inputs = []
    try:
        for line in _returnable(order):
            quantity = _int(request.POST.get(f"qty-{line.pk}", "0") or "0", field="quantity")
            if quantity <= 0:
                continue
            replacement = request.POST.get(f"exchange-{line.pk}", "").strip()
            replacement_id = None
            if replacement:
                variant = Variant.objects.filter(product_id=line.variant.product_id, sku__iexact=replacement).first()
                if variant is None:
                    raise InvalidOrderError(f"{line.sku}: exchange for a size or colour of the same product (SKU).")
                replacement_id = variant.pk
            inputs.append(
                services.ReturnInput(
                    line_id=line.pk,
                    quantity=quantity,
                    damaged=request.POST.get(f"damaged-{line.pk}") == "on",
                    replacement_variant_id=replacement_id,
                )
            )
        if not inputs:
            raise InvalidOrderError("Choose how many of which item comes back.")
        result = services.order_return(
            actor=request.user,
            order_id=order.pk,
            location_id=location.pk,
            lines=inputs,
            idempotency_key=request.POST.get("return_key", "") or "",
            note=request.POST.get("note", ""),
        )
    except ApplicationError as error:
        context = {
            "order": order,
            "query": number,
            "error": error.message,
            "location": location,
            "returnable": _returnable(order),
            "return_key": request.POST.get("return_key", ""),
        }
        return render(
            request,
            _fragment(request, RETURNS, "return-form"),
            context,
            status=409 if error.status_code == 409 else 400,
        )
    order = selectors.order_get(number=order.pk)
    context = {"order": order, "query": number, "location": location, "done": result, "returnable": _returnable(order)}
    response = render(request, _fragment(request, RETURNS, "return-form"), context)
    return htmx_toast(response, f"Return recorded: refund {result.refund_total}.", "success")
