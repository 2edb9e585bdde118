"""The Celery app for the real-worker tests: Omni's app, with a short visibility timeout so a message
whose worker was killed (`kill -9`) is redelivered in seconds rather than in an hour."""

from omni.celery import app

app.conf.broker_transport_options = {
    "visibility_timeout": 2,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

__all__ = ["app"]
