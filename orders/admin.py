"""Admin for orders: a read-only view of orders, payments, gift cards and lost demand (every change
goes through orders.services and the pages), plus issuing gift cards and setting managers' PINs
through the services.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from omni.errors import ApplicationError

from . import services
from .models import GiftCard, GiftCardKind, LostDemand, ManagerPin, Order, OrderEvent, OrderLine, Payment


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LineInline(admin.TabularInline):
    model = OrderLine
    fields = ("sku", "name", "kind", "source_location", "quantity", "total", "cancelled_quantity", "returned_quantity")
    readonly_fields = fields
    extra = 0
    can_delete = False


class PaymentInline(admin.TabularInline):
    model = Payment
    fields = ("tender", "amount", "refunded_amount", "card_last4", "terminal_ref")
    readonly_fields = fields
    extra = 0
    can_delete = False


class EventInline(admin.TabularInline):
    model = OrderEvent
    fields = ("created_at", "kind", "message", "actor_label")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(ReadOnly):
    list_display = ("__str__", "placed_at", "channel", "status", "location", "total", "refunded_total")
    list_filter = ("status", "channel")
    list_select_related = ("location",)
    search_fields = ("=id", "contact_email", "external_ref")
    show_full_result_count = False
    inlines = [LineInline, PaymentInline, EventInline]


@admin.register(LostDemand)
class LostDemandAdmin(ReadOnly):
    list_display = ("occurred_at", "location", "variant", "quantity", "fulfilment")
    list_select_related = ("location", "variant")


class GiftCardForm(forms.ModelForm):
    amount = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=2, help_text="Opening balance.")

    class Meta:
        model = GiftCard
        fields = ("code", "kind", "customer")


@admin.register(GiftCard)
class GiftCardAdmin(admin.ModelAdmin):
    """Cards are issued here (through orders.services.gift_card_issue); balances change only by
    payments and refunds, so existing cards are read-only."""

    list_display = ("__str__", "kind", "balance", "is_active", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("code",)
    form = GiftCardForm
    raw_id_fields = ("customer",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: GiftCard, form: Any, change: bool) -> None:
        card = services.gift_card_issue(
            actor=request.user,
            amount=form.cleaned_data["amount"],
            kind=form.cleaned_data.get("kind") or GiftCardKind.GIFT_CARD,
            customer_id=obj.customer_id,
            code=obj.code,
            idempotency_key=f"admin:{uuid.uuid4().hex}",
        )
        obj.pk = card.pk


class ManagerPinForm(forms.ModelForm):
    pin = forms.CharField(min_length=4, max_length=8, widget=forms.PasswordInput, help_text="4 to 8 digits.")

    class Meta:
        model = ManagerPin
        fields = ("user",)


@admin.register(ManagerPin)
class ManagerPinAdmin(admin.ModelAdmin):
    """A manager's PIN for approving discounts on the tablet (stored hashed)."""

    form = ManagerPinForm
    list_display = ("user", "updated_at")
    raw_id_fields = ("user",)

    def save_model(self, request: HttpRequest, obj: ManagerPin, form: Any, change: bool) -> None:
        try:
            record = services.manager_pin_set(user=obj.user, pin=form.cleaned_data["pin"])
        except ApplicationError as error:
            messages.error(request, error.message)
            return
        obj.pk = record.pk
