"""REST endpoints of the orders app, mounted under /api/v1/."""

from django.urls import path

urlpatterns: list = []
