from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import (
    DriftReport,
    InventoryPush,
    OnlineInventoryLevel,
    OnlineLocation,
    OnlineResourceVersion,
    SyncCursor,
    WebhookDelivery,
)
from .services import delivery_replay


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "status", "attempts", "duplicates", "webhook_id", "received_at", "short_error"]
    list_filter = ["status", "topic", "shop_domain"]
    search_fields = ["webhook_id", "event_id", "error"]
    readonly_fields = ["body_text"]
    exclude = ["raw_body"]
    actions = ["replay"]
    date_hierarchy = "received_at"

    @admin.display(description="error")
    def short_error(self, obj: WebhookDelivery) -> str:
        return obj.error[:80]

    @admin.display(description="body")
    def body_text(self, obj: WebhookDelivery) -> str:
        return bytes(obj.raw_body)[:20000].decode("utf-8", errors="replace")

    @admin.action(description="Replay the selected deliveries")
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset.only("pk"):
            delivery_replay(actor=request.user, delivery_id=delivery.pk)
            count += 1
        self.message_user(request, f"{count} deliveries queued for processing again.", messages.SUCCESS)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Replay changes nothing but the status; allowed to superusers though change is off.
        return super().get_actions(request) if request.user.is_superuser else {}


@admin.register(OnlineLocation)
class OnlineLocationAdmin(admin.ModelAdmin):
    list_display = [
        "online_location_id",
        "name",
        "location",
        "push_enabled",
        "last_push_at",
        "last_push_error",
        "last_reconciled_at",
        "drift_count",
    ]
    list_select_related = ["location"]
    list_filter = ["push_enabled"]
    readonly_fields = ["last_push_at", "last_push_error", "last_reconciled_at", "drift_count"]


@admin.register(OnlineInventoryLevel)
class OnlineInventoryLevelAdmin(ReadOnlyAdmin):
    list_display = ["variant", "location", "online_available", "pushed_available", "differs", "echoes", "pushed_at"]
    list_select_related = ["variant__product", "location"]
    list_filter = ["differs", "location"]
    search_fields = ["variant__sku"]


@admin.register(InventoryPush)
class InventoryPushAdmin(ReadOnlyAdmin):
    list_display = ["id", "location", "status", "attempts", "created_at", "sent_at", "error"]
    list_select_related = ["location"]
    list_filter = ["status", "location"]


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    list_display = ["id", "location", "checked", "drifted", "created_at"]
    list_select_related = ["location"]


admin.site.register(OnlineResourceVersion, ReadOnlyAdmin)
admin.site.register(SyncCursor, ReadOnlyAdmin)
