"""Back office for transfers: policies and planner settings are edited here; transfers are read here
and change state only through the services (the admin actions call them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from omni.errors import ApplicationError

from . import services
from .models import PlannerSettings, PlanRun, PolicyOverride, ReplenishmentPolicy, Transfer, TransferEvent, TransferLine


class PolicyOverrideInline(admin.TabularInline):
    model = PolicyOverride
    extra = 0
    raw_id_fields = ("variant",)


@admin.register(ReplenishmentPolicy)
class ReplenishmentPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "location",
        "is_active",
        "replenish",
        "rebalance",
        "target_days_of_cover",
        "min_display_quantity",
        "auto_approve_max_units",
        "auto_approve_max_value",
        "source",
    )
    list_filter = ("is_active", "replenish", "rebalance")
    list_editable = ("target_days_of_cover", "min_display_quantity", "auto_approve_max_units")
    inlines = [PolicyOverrideInline]


@admin.register(PlannerSettings)
class PlannerSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "velocity_window_days", "excess_cover_days", "min_shipment_units", "min_shipment_value")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not PlannerSettings.objects.exists()


class TransferLineInline(admin.TabularInline):
    model = TransferLine
    extra = 0
    can_delete = False
    fields = (
        "variant",
        "quantity",
        "quantity_picked",
        "quantity_dispatched",
        "quantity_counted",
        "quantity_received",
        "for_order",
        "reference_id",
        "why",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TransferEventInline(admin.TabularInline):
    model = TransferEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "actor_label", "message")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Transfer)
class TransferAdmin(admin.ModelAdmin):
    list_display = ("__str__", "origin", "destination", "status", "source", "created_at", "has_discrepancy")
    list_filter = ("status", "source", "has_discrepancy")
    search_fields = ("id", "reason", "idempotency_key")
    list_select_related = ("origin", "destination")
    inlines = [TransferLineInline, TransferEventInline]
    actions = ["approve_selected", "cancel_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Transfer._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Approve selected proposed transfers")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Transfer]) -> None:
        self._each(request, queryset, lambda pk: services.transfer_approve(actor=request.user, transfer_id=pk))

    @admin.action(description="Cancel selected transfers (before dispatch)")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Transfer]) -> None:
        self._each(request, queryset, lambda pk: services.transfer_cancel(actor=request.user, transfer_id=pk))

    def _each(self, request: HttpRequest, queryset: QuerySet[Transfer], action: Any) -> None:
        done = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                action(pk)
                done += 1
            except ApplicationError as error:
                self.message_user(request, f"TR-{pk:06d}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} transfer(s) updated.", messages.SUCCESS)


@admin.register(PlanRun)
class PlanRunAdmin(admin.ModelAdmin):
    list_display = ("key", "planners", "started_at", "duration_ms")
    readonly_fields = ("key", "planners", "parameters", "counts", "started_at", "finished_at", "duration_ms")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
