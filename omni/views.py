"""Platform pages: home, sign in/out, location switcher, health probes, the 404 and 500 answers."""

from __future__ import annotations

from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from omni.errors import ApplicationError
from omni.http import client_ip
from omni.middleware import LOCATION_SESSION_KEY, is_api_request
from omni.services import user_authenticate, user_switch_location


@login_required
def home(request: HttpRequest) -> HttpResponse:
    # The tiles and the locations come from omni.context_processors (shared with the top bar).
    return render(request, "omni/home.html")


@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    if request.method == "GET" and request.user.is_authenticated:
        return redirect(next_url or "home")
    error = None
    status = 200
    if request.method == "POST":
        try:
            user = user_authenticate(
                request=request,
                username=request.POST.get("username", ""),
                password=request.POST.get("password", ""),
                ip_address=client_ip(request),
                channel="web",
            )
        except ApplicationError as exc:
            error, status = exc.message, exc.status_code
        else:
            login(request, user)
            return redirect(next_url or "home")
    return render(
        request,
        "omni/login.html",
        {"error": error, "next": next_url, "username": request.POST.get("username", "")},
        status=status,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


@login_required
@require_POST
def location_switch(request: HttpRequest) -> HttpResponse:
    try:
        location_id = int(request.POST.get("location", ""))
        user_switch_location(user=request.user, location_id=location_id)
    except (ValueError, ApplicationError):
        return HttpResponse("You cannot work for that location.", status=403)
    request.session[LOCATION_SESSION_KEY] = location_id
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    return redirect(next_url or "home")


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness plus dependencies: the database and the Celery broker must answer."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ok else "error", "checks": checks}, status=200 if ok else 503)


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to take traffic: the database answers and has no unapplied migrations."""
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return JsonResponse({"status": "error", "detail": type(exc).__name__}, status=503)
    if pending:
        return JsonResponse({"status": "migrating", "pending": len(pending)}, status=503)
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return f"error: {type(exc).__name__}"


def _check_broker() -> str:
    from omni.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return f"error: {type(exc).__name__}"


# --- Errors Django raises itself (no URL matched, an exception no view caught) --------------------------
# Under /api/ they answer in the API's own shape ({"code", "message", "extra"}), as DRF's errors do,
# so a client never has to parse an HTML page; elsewhere the templates 404.html and 500.html.


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        message = f"No API endpoint at {request.path[:200]} (see /api/docs/)."
        return JsonResponse({"code": "not_found", "message": message, "extra": {}}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        request_id = getattr(request, "request_id", "")
        message = "Omni had a problem with this request. Quote the request id when you report it."
        body = {"code": "server_error", "message": message, "extra": {"request_id": request_id}}
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
