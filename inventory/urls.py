"""Pages of the inventory app (htmx). Mounted at the site root; paths carry their own prefix."""

from django.urls import path

from . import views

app_name = "inventory"

urlpatterns = [
    path("stock/", views.stock_search, name="search"),
    path("stock/scan/", views.stock_scan, name="scan"),
    path("stock/products/<int:product_id>/", views.stock_product, name="product"),
    path("stock/levels/<int:location_id>/<int:variant_id>/", views.stock_level, name="level"),
    path("stock/low/", views.stock_low, name="low-stock"),
    path("stock/adjust/", views.stock_adjust, name="adjust"),
    path("stock/count/", views.stock_count, name="count"),
    path("stock/count/scan/", views.stock_count_scan, name="count-scan"),
    path("stock/count/set/", views.stock_count_set, name="count-set"),
    path("stock/count/finish/", views.stock_count_finish, name="count-finish"),
    path("stock/count/discard/", views.stock_count_discard, name="count-discard"),
    path("stock/ledger/<int:variant_id>/", views.stock_ledger, name="ledger"),
]
