"""Pages of the online app (htmx). Mounted at the site root; paths carry their own prefix."""

from django.urls import path

app_name = "online"

urlpatterns: list = []
