"""REST endpoints of the orders app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("orders/", api.OrderCollectionApi.as_view(), name="orders"),
    path("orders/<str:number>/", api.OrderDetailApi.as_view(), name="orders-detail"),
    path("orders/<str:number>/cancel/", api.OrderCancelApi.as_view(), name="orders-cancel"),
    path("orders/<str:number>/returns/", api.OrderReturnApi.as_view(), name="orders-return"),
    path("fulfilments/", api.FulfilmentQueueApi.as_view(), name="fulfilments-queue"),
    path("fulfilments/<int:fulfilment_id>/pick/", api.FulfilmentPickApi.as_view(), name="fulfilments-pick"),
    path("fulfilments/<int:fulfilment_id>/pack/", api.FulfilmentPackApi.as_view(), name="fulfilments-pack"),
    path("fulfilments/<int:fulfilment_id>/ship/", api.FulfilmentShipApi.as_view(), name="fulfilments-ship"),
    path("fulfilments/<int:fulfilment_id>/deliver/", api.FulfilmentDeliverApi.as_view(), name="fulfilments-deliver"),
    path("fulfilments/<int:fulfilment_id>/ready/", api.FulfilmentReadyApi.as_view(), name="fulfilments-ready"),
    path("fulfilments/<int:fulfilment_id>/collect/", api.FulfilmentCollectApi.as_view(), name="fulfilments-collect"),
]
