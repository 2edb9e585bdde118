"""REST endpoints of the insights app, mounted under /api/v1/."""

from django.urls import path

urlpatterns: list = []
