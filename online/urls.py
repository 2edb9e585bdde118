"""Online store endpoints: the signed webhook receiver."""

from django.urls import path

from . import views

app_name = "online"

urlpatterns = [
    path("webhooks/shopify/", views.shopify_webhook, name="shopify-webhook"),
]
