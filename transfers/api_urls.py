"""REST endpoints of the transfers app, mounted under /api/v1/."""

from django.urls import path

urlpatterns: list = []
