"""Admin for insights. Derived rows (runs, customer insights, snapshots, anomalies) and what
customers told us (surveys, shares of wallet) and the export log are read-only here: the nightly
run and the pages write them through insights.services. Season dates are configuration, editable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import (
    Anomaly,
    CustomerInsight,
    InsightRun,
    Season,
    SegmentExport,
    SurveyResponse,
    WalletShare,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Season)
class SeasonAdmin(admin.ModelAdmin):
    list_display = ("code", "starts_on", "ends_on")
    search_fields = ("code",)


@admin.register(InsightRun)
class InsightRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "as_of", "status", "customers_scored", "anomalies_found", "started_at", "finished_at")
    list_filter = ("status",)


@admin.register(CustomerInsight)
class CustomerInsightAdmin(ReadOnlyAdmin):
    list_display = ("customer", "segment", "value_band", "at_risk", "p_alive", "clv_12m", "last_location")
    list_filter = ("segment", "value_band", "at_risk")
    list_select_related = ("customer", "last_location")
    raw_id_fields = ("customer",)
    show_full_result_count = False


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ReadOnlyAdmin):
    list_display = ("order_ref", "customer", "satisfaction", "recommend", "location", "created_at")
    list_select_related = ("customer", "location")
    search_fields = ("order_ref",)


@admin.register(WalletShare)
class WalletShareAdmin(ReadOnlyAdmin):
    list_display = ("customer", "category", "share_percent", "recorded_by_label", "recorded_at")
    list_select_related = ("customer",)


@admin.register(Anomaly)
class AnomalyAdmin(ReadOnlyAdmin):
    list_display = ("detected_on", "kind", "location", "subject", "observed", "expected", "acknowledged_at")
    list_filter = ("kind",)
    list_select_related = ("location",)


@admin.register(SegmentExport)
class SegmentExportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "channel", "row_count", "exported_by_label", "location")
    list_select_related = ("location",)
