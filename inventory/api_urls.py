"""REST endpoints of the inventory app, mounted under /api/v1/."""

from django.urls import path

urlpatterns: list = []
