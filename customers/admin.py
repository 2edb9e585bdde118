"""Admin for customers. Profiles are edited through customers.services (normalised, audited);
the ledgers (consent history, loyalty entries, audit events, purchases, merges) are read-only.

Every changelist selects the related rows it prints in the same query (no query per row); the
customer table is large, so its changelist does not count the unfiltered total.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from omni.errors import ApplicationError

from . import services
from .errors import DuplicateEmailError, InvalidCustomerDataError
from .models import (
    ConsentEvent,
    Customer,
    CustomerAddress,
    CustomerEvent,
    CustomerIdentity,
    CustomerMerge,
    CustomerPurchase,
    LoyaltyAccount,
    LoyaltyEntry,
    MatchReview,
    MatchStatus,
    PurchasedItem,
)

EDITABLE = (
    "name", "email", "phone", "birthday", "anniversary", "size_tops", "size_bottoms", "size_dresses",
    "size_shoes", "interest_brands", "interest_categories", "preferred_store", "notes",
)  # fmt: skip


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by whoever may view the model; nobody adds, changes or deletes through the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IdentityInline(ReadOnlyInline):
    model = CustomerIdentity
    fields = ("kind", "value", "created_at")
    readonly_fields = fields


class AddressInline(ReadOnlyInline):
    model = CustomerAddress
    fields = ("label", "line1", "line2", "city", "region", "postcode", "country", "is_default")
    readonly_fields = fields


class ConsentInline(ReadOnlyInline):
    model = ConsentEvent
    fields = ("occurred_at", "channel", "granted", "source", "location", "actor_label", "note")
    readonly_fields = fields
    ordering = ("-occurred_at", "-id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConsentEvent]:
        return super().get_queryset(request).select_related("location")


class CustomerAdminForm(forms.ModelForm):
    """Runs the service's checks (normalisation, unique email) so errors land on the fields."""

    class Meta:
        model = Customer
        fields = EDITABLE

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        changes = {key if key != "preferred_store" else "preferred_store_id": cleaned.get(key) for key in EDITABLE}
        if changes["preferred_store_id"] is not None:
            changes["preferred_store_id"] = changes["preferred_store_id"].pk
        try:
            self.service_values = services.customer_validate(changes=changes, customer_id=self.instance.pk)
        except InvalidCustomerDataError as exc:
            for field, message in exc.extra["fields"].items():
                name = "preferred_store" if field == "preferred_store_id" else field
                self.add_error(name if name in self.fields else None, message)
        except DuplicateEmailError as exc:
            self.add_error("email", exc.message)
        else:
            # The model's own checks (constraints) run next on these values: give them the normal form.
            for key in ("name", "email", "phone", "interest_brands", "interest_categories", "notes"):
                cleaned[key] = self.service_values[key]
        return cleaned


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerAdminForm
    list_display = (
        "id", "name", "email", "phone", "status", "preferred_store", "lifetime_spend", "visit_count",
        "last_purchase_at",
    )  # fmt: skip
    list_display_links = ("id", "name")
    list_filter = ("status", "email_consent", "sms_consent", "source", "preferred_store")
    list_select_related = ("preferred_store",)
    search_fields = ("name_search", "=email", "phone_national", "=phone")
    show_full_result_count = False
    readonly_fields = (
        "status", "merged_into", "email_consent", "sms_consent", "lifetime_spend", "visit_count",
        "first_purchase_at", "last_purchase_at", "source", "created_at_location", "created_by", "created_at",
        "updated_at", "erased_at",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("name", "email", "phone", "status", "merged_into")}),
        ("Profile", {"fields": ("birthday", "anniversary", ("size_tops", "size_bottoms", "size_dresses",
                                 "size_shoes"), "interest_brands", "interest_categories", "preferred_store",
                                 "notes")}),
        ("Consent (change it on the customer page; history below)", {"fields": ("email_consent", "sms_consent")}),
        ("Purchases", {"fields": ("lifetime_spend", "visit_count", "first_purchase_at", "last_purchase_at")}),
        ("Record", {"fields": ("source", "created_at_location", "created_by", "created_at", "updated_at",
                               "erased_at")}),
    )  # fmt: skip
    inlines = (IdentityInline, AddressInline, ConsentInline)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erase (privacy) instead: sales must keep their customer row

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        values = form.service_values
        try:
            if change:
                changes = {}
                for name in form.changed_data:
                    key = "preferred_store_id" if name == "preferred_store" else name
                    changes[key] = values.get(key)
                saved = services.customer_update(customer_id=obj.pk, actor=request.user, changes=changes)
            else:
                saved = services.customer_create(
                    actor=request.user,
                    name=values.get("name", ""),
                    email=values.get("email", ""),
                    phone=values.get("phone", ""),
                    details={
                        k: v for k, v in values.items()
                        if k not in ("name", "name_search", "email", "phone", "phone_national")
                    },
                    source="admin",
                )  # fmt: skip
        except ApplicationError as exc:
            # The form checked everything; this is a race (the email was taken meanwhile).
            messages.error(request, exc.message)
            raise
        obj.pk = saved.pk
        obj.refresh_from_db()


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "customer", "channel", "granted", "source", "location", "actor_label")
    list_filter = ("channel", "granted", "source")
    list_select_related = ("customer", "location")
    search_fields = ("=customer__id",)
    date_hierarchy = "occurred_at"


@admin.register(CustomerEvent)
class CustomerEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "kind", "actor_label", "location")
    list_filter = ("kind",)
    list_select_related = ("customer", "location")
    search_fields = ("=customer__id",)


@admin.action(description="Different people: dismiss the selected open reviews")
def dismiss_reviews(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[MatchReview]) -> None:
    done = 0
    for review_id in queryset.filter(status=MatchStatus.OPEN).values_list("pk", flat=True):
        services.match_review_dismiss(review_id=review_id, actor=request.user)
        done += 1
    messages.success(request, f"Dismissed {done} review(s).")


@admin.register(MatchReview)
class MatchReviewAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "candidate", "reason", "status", "source", "created_at", "resolved_by")
    list_filter = ("status", "reason", "source")
    list_select_related = ("customer", "candidate", "resolved_by")
    actions = (dismiss_reviews,)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Actions need change permission; the form itself stays read-only (no editable fields).
        return obj is None and request.user.has_perm("customers.change_matchreview")


@admin.register(CustomerMerge)
class CustomerMergeAdmin(ReadOnlyAdmin):
    list_display = ("id", "source", "target", "actor_label", "created_at", "moved")
    list_select_related = ("source", "target")


class PurchasedItemInline(ReadOnlyInline):
    model = PurchasedItem
    fields = ("variant", "brand", "category", "quantity", "amount")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[PurchasedItem]:
        return super().get_queryset(request).select_related("variant__product")


@admin.register(CustomerPurchase)
class CustomerPurchaseAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "order_ref", "kind", "customer", "channel", "location", "amount")
    list_filter = ("kind", "channel", "location")
    list_select_related = ("customer", "location")
    search_fields = ("=order_ref", "=customer__id")
    date_hierarchy = "occurred_at"
    inlines = (PurchasedItemInline,)


@admin.register(LoyaltyAccount)
class LoyaltyAccountAdmin(ReadOnlyAdmin):
    list_display = ("customer", "balance", "tier", "spend_12m", "tier_evaluated_at")
    list_filter = ("tier",)
    list_select_related = ("customer",)
    search_fields = ("=customer__id",)


@admin.register(LoyaltyEntry)
class LoyaltyEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account_id", "kind", "points", "balance_after", "order_ref", "amount",
                    "actor_label")  # fmt: skip
    list_filter = ("kind",)
    search_fields = ("=order_ref", "=idempotency_key", "=account__customer__id")
