"""Pages of the transfers app (htmx). Mounted at the site root; paths carry their own prefix."""

from django.urls import path

app_name = "transfers"

urlpatterns: list = []
