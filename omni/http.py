from __future__ import annotations

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address (REMOTE_ADDR; a proxy must set it, we do not trust X-Forwarded-For)."""
    return request.META.get("REMOTE_ADDR") or None
