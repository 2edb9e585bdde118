"""REST endpoints of the transfers app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("transfers/", api.TransferListApi.as_view(), name="transfers-list"),
    path("transfers/<int:transfer_id>/", api.TransferDetailApi.as_view(), name="transfers-detail"),
    path("transfers/<int:transfer_id>/approve/", api.TransferApproveApi.as_view(), name="transfers-approve"),
    path("transfers/<int:transfer_id>/reject/", api.TransferRejectApi.as_view(), name="transfers-reject"),
    path("transfers/<int:transfer_id>/cancel/", api.TransferCancelApi.as_view(), name="transfers-cancel"),
    path("transfers/<int:transfer_id>/dispatch/", api.TransferDispatchApi.as_view(), name="transfers-dispatch"),
    path("transfers/<int:transfer_id>/receive/", api.TransferReceiveApi.as_view(), name="transfers-receive"),
]
