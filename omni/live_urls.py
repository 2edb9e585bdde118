"""Live updates (server-sent events). Filled in by omni.live."""

from django.urls import path

urlpatterns: list = []
