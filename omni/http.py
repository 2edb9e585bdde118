"""Small HTTP helpers shared by the apps' pages."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse


def client_ip(request: HttpRequest) -> str | None:
    """The client's address (REMOTE_ADDR; a proxy must set it, we do not trust X-Forwarded-For)."""
    return request.META.get("REMOTE_ADDR") or None


def htmx_toast(response: HttpResponse, message: str, level: str = "info") -> HttpResponse:
    """Ask the page (omni.js) to show `message` in a toast; level is info, success, warning or error.

    Merges with any HX-Trigger events already on the response.
    """
    events: dict[str, object] = {}
    existing = response.get("HX-Trigger")
    if existing:
        try:
            parsed = json.loads(existing)
        except ValueError:
            parsed = {name.strip(): None for name in existing.split(",")}
        if isinstance(parsed, dict):
            events.update(parsed)
    events["omni:toast"] = {"message": message, "level": level}
    response["HX-Trigger"] = json.dumps(events)
    return response


NUL_MESSAGE = "Text may not contain NUL characters (\\x00)."


def contains_nul(value: object) -> bool:
    """Whether a decoded request value (text, or lists and dicts of them) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False
