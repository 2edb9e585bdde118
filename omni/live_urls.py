"""Live updates (server-sent events), mounted at /live/. See omni.live_stream."""

from django.urls import path

from omni.live_stream import live_stream

urlpatterns = [
    path("stream/", live_stream, name="live-stream"),
]
