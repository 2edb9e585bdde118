"""Pages of the transfers app (htmx). Mounted at the site root; paths carry their own prefix."""

from django.urls import path

from . import views

app_name = "transfers"

urlpatterns = [
    path("transfers/", views.transfer_index, name="index"),
    path("transfers/exceptions/", views.transfer_exceptions, name="exceptions"),
    path("transfers/dashboard/", views.transfer_dashboard, name="dashboard"),
    path("transfers/new/", views.transfer_new, name="new"),
    path("transfers/plan/", views.transfer_plan_now, name="plan-now"),
    path("transfers/<int:transfer_id>/", views.transfer_detail, name="detail"),
    path("transfers/<int:transfer_id>/approve/", views.transfer_approve, name="approve"),
    path("transfers/<int:transfer_id>/reject/", views.transfer_reject, name="reject"),
    path("transfers/<int:transfer_id>/cancel/", views.transfer_cancel, name="cancel"),
    path("transfers/<int:transfer_id>/acknowledge/", views.transfer_acknowledge, name="acknowledge"),
    path("transfers/<int:transfer_id>/pick/", views.transfer_pick, name="pick"),
    path("transfers/<int:transfer_id>/pick/scan/", views.transfer_pick_scan, name="pick-scan"),
    path("transfers/<int:transfer_id>/pick/set/", views.transfer_pick_set, name="pick-set"),
    path("transfers/<int:transfer_id>/dispatch/", views.transfer_dispatch, name="dispatch"),
    path("transfers/<int:transfer_id>/receive/", views.transfer_receive, name="receive"),
    path("transfers/<int:transfer_id>/receive/scan/", views.transfer_receive_scan, name="receive-scan"),
    path("transfers/<int:transfer_id>/receive/set/", views.transfer_receive_set, name="receive-set"),
    path("transfers/<int:transfer_id>/receive/finish/", views.transfer_receive_finish, name="receive-finish"),
]
