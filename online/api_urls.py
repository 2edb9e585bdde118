"""REST endpoints of the online app, mounted under /api/v1/."""

from django.urls import path

urlpatterns: list = []
