"""REST endpoints of the inventory app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("availability/", api.availability_view, name="inventory-availability"),
    path("locations/", api.LocationListApi.as_view(), name="inventory-locations"),
    path("locations/<slug:code>/stock/", api.LocationStockApi.as_view(), name="inventory-location-stock"),
    path("stock/receipts/", api.StockReceiptApi.as_view(), name="inventory-receipts"),
    path("stock/adjustments/", api.StockAdjustmentApi.as_view(), name="inventory-adjustments"),
    path("stock/counts/", api.StockCountApi.as_view(), name="inventory-counts"),
    path("stock/reservations/", api.ReservationCreateApi.as_view(), name="inventory-reservations"),
    path(
        "stock/reservations/<int:reservation_id>/release/",
        api.ReservationReleaseApi.as_view(),
        name="inventory-reservation-release",
    ),
    path("ledger/", api.LedgerApi.as_view(), name="inventory-ledger"),
]
