"""Pages of the insights app (htmx). Mounted at the site root; paths carry their own prefix."""

from django.urls import path

from . import views

app_name = "insights"

urlpatterns = [
    path("insights/customers/", views.customer_list, name="customers"),
    path("insights/customers/export.csv", views.customer_export, name="customers-export"),
    path("insights/customer/<int:customer_id>/", views.customer_card, name="customer-card"),
    path("insights/customer/<int:customer_id>/wallet-share/", views.wallet_share_record, name="wallet-share"),
    path("insights/survey/", views.survey, name="survey"),
    path("insights/size-curves/", views.size_curves, name="size-curves"),
    path("insights/sell-through/", views.sell_through, name="sell-through"),
    path("insights/anomalies/", views.anomalies, name="anomalies"),
    path("insights/anomalies/<int:anomaly_id>/acknowledge/", views.anomaly_acknowledge, name="anomaly-acknowledge"),
    path("insights/run/", views.run_now, name="run-now"),
    path("insights/run/status/", views.run_status, name="run-status"),
]
