"""Admin for inventory. Stock itself is read-only here: it changes only through inventory.services.

Locations and the catalogue are edited normally. Levels, the ledger, reservations and
reconciliation runs can be looked at, never edited; the one write (releasing a hold) goes
through the service, with the admin user as the actor. Every changelist selects its related rows
in the same query (no query per row): Variant.__str__ reads its product, so list columns name
SKUs explicitly instead of printing the variant.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from omni.errors import ApplicationError
from omni.roles import MANAGERS, Role, has_role

from . import services
from .models import (
    Location,
    Product,
    ReconciliationDrift,
    ReconciliationRun,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    Variant,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by whoever may view the model; nobody adds, changes or deletes through the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "city", "is_active", "sells_in_store", "sells_online", "ships_to_customers")
    list_filter = ("kind", "is_active", "sells_online", "ships_to_customers", "offers_pickup")
    search_fields = ("code", "name", "city", "postcode")
    ordering = ("code",)


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("sku", "barcode", "size", "colour", "price", "currency", "is_active")
    show_change_link = True


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("style", "name", "brand", "category", "season", "is_active", "updated_at")
    list_filter = ("is_active", "category", "season", "brand")
    search_fields = ("style", "name", "brand", "=variants__sku", "=variants__barcode")
    inlines = [VariantInline]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ("sku", "barcode", "product_name", "size", "colour", "price", "is_active")
    list_select_related = ("product",)
    list_filter = ("is_active", "product__category", "size")
    search_fields = ("sku", "barcode", "product__name", "product__style")
    autocomplete_fields = ("product",)

    @admin.display(description="Product", ordering="product__name")
    def product_name(self, variant: Variant) -> str:
        return variant.product.name


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdmin):
    list_display = (
        "location_code",
        "sku",
        "on_hand",
        "committed",
        "reserved",
        "safety_stock",
        "unavailable",
        "incoming",
        "available",
        "needs_count",
        "updated_at",
    )
    list_select_related = ("location", "variant")
    list_filter = ("needs_count", "location__kind", "location")
    search_fields = ("=variant__sku", "=variant__barcode", "variant__product__name", "=location__code")
    show_full_result_count = False  # a million levels: skip the second COUNT(*)

    @admin.display(description="Location", ordering="location__code")
    def location_code(self, level: StockLevel) -> str:
        return level.location.code

    @admin.display(description="SKU", ordering="variant__sku")
    def sku(self, level: StockLevel) -> str:
        return level.variant.sku


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    """The ledger is append-only: no add, change or delete for anyone, superusers included."""

    list_display = (
        "id",
        "created_at",
        "location_code",
        "sku",
        "state",
        "quantity",
        "reason",
        "reason_code",
        "reference",
        "actor_label",
    )
    list_select_related = ("location", "variant")
    list_filter = ("reason", "state", "location")
    search_fields = ("=variant__sku", "=operation_key", "=reference_id", "actor_label")
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="Location", ordering="location__code")
    def location_code(self, movement: StockMovement) -> str:
        return movement.location.code

    @admin.display(description="SKU", ordering="variant__sku")
    def sku(self, movement: StockMovement) -> str:
        return movement.variant.sku

    @admin.display(description="Reference")
    def reference(self, movement: StockMovement) -> str:
        return f"{movement.reference_type} {movement.reference_id}".strip()


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("id", "location_code", "sku", "quantity", "status", "expires_at", "reference", "created_at")
    list_select_related = ("location", "variant")
    list_filter = ("status", "location")
    search_fields = ("=variant__sku", "=reference_id", "=idempotency_key")
    actions = ["release"]

    @admin.display(description="Location", ordering="location__code")
    def location_code(self, reservation: Reservation) -> str:
        return reservation.location.code

    @admin.display(description="SKU", ordering="variant__sku")
    def sku(self, reservation: Reservation) -> str:
        return reservation.variant.sku

    @admin.display(description="Reference")
    def reference(self, reservation: Reservation) -> str:
        return f"{reservation.reference_type} {reservation.reference_id}".strip()

    def has_release_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, *MANAGERS, Role.WAREHOUSE)

    @admin.action(description="Release the selected holds (stock becomes available)", permissions=["release"])
    def release(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        released = 0
        for reservation_id in queryset.filter(status=ReservationStatus.ACTIVE).values_list("pk", flat=True):
            try:
                services.stock_release(actor=request.user, reservation_id=reservation_id)
            except ApplicationError as error:
                self.message_user(request, f"Hold {reservation_id}: {error.message}", messages.ERROR)
            else:
                released += 1
        self.message_user(request, f"Released {released} hold(s).", messages.SUCCESS)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "started_at", "finished_at", "status", "levels_checked", "drift_count", "drifts_link")
    list_filter = ("status",)
    readonly_fields = ("drifts_link",)

    @admin.display(description="Drift")
    def drifts_link(self, run: ReconciliationRun) -> str:
        if not run.drift_count:
            return "-"
        url = reverse("admin:inventory_reconciliationdrift_changelist") + f"?run__id__exact={run.pk}"
        return format_html('<a href="{}">{} drifting state(s)</a>', url, run.drift_count)


@admin.register(ReconciliationDrift)
class ReconciliationDriftAdmin(ReadOnlyAdmin):
    list_display = ("run", "location_code", "sku", "state", "level_value", "ledger_sum", "difference")
    list_select_related = ("run", "location", "variant")
    list_filter = ("state", "run")
    search_fields = ("=variant__sku", "=location__code")

    @admin.display(description="Location", ordering="location__code")
    def location_code(self, drift: ReconciliationDrift) -> str:
        return drift.location.code

    @admin.display(description="SKU", ordering="variant__sku")
    def sku(self, drift: ReconciliationDrift) -> str:
        return drift.variant.sku

    @admin.display(description="Level - ledger")
    def difference(self, drift: ReconciliationDrift) -> int:
        return drift.difference
