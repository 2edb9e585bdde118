"""REST endpoints of the customers app, mounted under /api/v1/."""

from django.urls import path

urlpatterns: list = []
