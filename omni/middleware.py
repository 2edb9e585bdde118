"""Cross-cutting middleware: request ids, the content security policy, the current location, and
domain errors raised by pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from omni.errors import ApplicationError, ForbiddenError
from omni.http import NUL_MESSAGE, contains_nul, htmx_toast
from omni.logging import request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LOCATION_SESSION_KEY = "omni_location_id"


def is_api_request(request: HttpRequest) -> bool:
    """Under /api/: answers in JSON and in UTC, whoever asks."""
    return request.path.startswith("/api/")


class NulCharacterMiddleware:
    """A 400 for a query string or form field holding a NUL character. PostgreSQL cannot store or
    compare text with one, so a search or a save would end in a DataError (a 500): schemathesis
    sent `?q=a%00b`. JSON bodies are checked by the API's parser (omni.parsers.JSONParser)."""

    FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = "%00" in request.META.get("QUERY_STRING", "")
        if not bad and request.method == "POST" and request.content_type in self.FORMS:
            bad = contains_nul({key: request.POST.getlist(key) for key in request.POST})
        if not bad:
            return self.get_response(request)
        if is_api_request(request):
            return JsonResponse({"code": "invalid", "message": NUL_MESSAGE, "extra": {}}, status=400)
        return HttpResponse(NUL_MESSAGE, status=400, content_type="text/plain; charset=utf-8")


class RequestIdMiddleware:
    """Take X-Request-ID from a trusted proxy when it looks sane, otherwise mint one; echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response


class CurrentLocationMiddleware:
    """`request.location`: the location a member of staff is working for (switcher), else home.

    Pages show times in that location's time zone (an order placed at 19:57 in Austin reads 19:57,
    not 01:57 UTC), and "today" is its day. The API keeps UTC: its answers must not depend on
    who asks.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.location = None  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from omni.selectors import user_current_location

            request.location = user_current_location(  # type: ignore[attr-defined]
                user=user, chosen_id=request.session.get(LOCATION_SESSION_KEY)
            )
        location = request.location  # type: ignore[attr-defined]
        if location is None or is_api_request(request):
            return self.get_response(request)
        with timezone.override(location.zone):  # the lane serves other requests next: restored after
            return self.get_response(request)


class ApplicationErrorMiddleware:
    """A page view that lets an ApplicationError (or PermissionDenied) escape answers with its
    status and message instead of a 500: a toast for htmx requests (nothing is swapped), the error
    page otherwise, JSON under /api/ (DRF views already do this through omni.errors).

    Views that can show the message in place (a form) should catch the error themselves; this is
    the safety net that keeps a missed case from becoming a server error.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, PermissionDenied):
            exception = ForbiddenError("forbidden", str(exception) or "You are not allowed to do that.")
        if not isinstance(exception, ApplicationError):
            return None
        status = exception.status_code
        if is_api_request(request):
            return JsonResponse(exception.as_dict(), status=status)
        if getattr(request, "htmx", False):
            response = HttpResponse(exception.message, status=status, content_type="text/plain; charset=utf-8")
            response["HX-Reswap"] = "none"
            return htmx_toast(response, exception.message, "error")
        return render(request, "omni/error.html", {"error": exception}, status=status)
