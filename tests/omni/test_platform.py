"""Operations and security plumbing: request ids, JSON logs, CSP, readiness, production settings."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import get_resolver

from omni.logging import request_id_var

BASE_DIR = Path(__file__).resolve().parents[2]


# ---- request ids -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_request_without_id_gets_a_fresh_one(client):
    first = client.get("/login/")["X-Request-ID"]
    second = client.get("/login/")["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.django_db
def test_a_sane_incoming_request_id_is_echoed(client):
    response = client.get("/login/", HTTP_X_REQUEST_ID="edge-7f3a.42_b")

    assert response["X-Request-ID"] == "edge-7f3a.42_b"


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["has space", "x" * 65, "semi;colon", "new\u2028line"])
def test_an_unsafe_incoming_request_id_is_replaced(client, bad):
    response = client.get("/login/", HTTP_X_REQUEST_ID=bad)

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


# ---- logs --------------------------------------------------------------------------------------
def _json_logger(stream: io.StringIO) -> logging.Logger:
    """A logger wired exactly like settings.LOGGING's console handler, with the JSON formatter."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": settings.LOGGING["filters"],
        "formatters": {"json": settings.LOGGING["formatters"]["json"]},
        "handlers": {
            "capture": {
                "class": "logging.StreamHandler",
                "stream": stream,
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "loggers": {"django.request": {"handlers": ["capture"], "level": "INFO", "propagate": False}},
    }
    logging.config.dictConfig(config)
    return logging.getLogger("django.request")


@pytest.mark.django_db
def test_json_log_lines_carry_the_request_id_of_the_request(client):
    stream = io.StringIO()
    logger = _json_logger(stream)
    try:
        client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-123")  # Django logs the 404 as a warning
    finally:
        logger.handlers.clear()
        logger.propagate = True

    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records, "the 404 was not logged"
    record = records[-1]
    assert record["request_id"] == "req-123"
    assert record["level"] == "WARNING"
    assert record["logger"] == "django.request"
    assert "Not Found" in record["message"]
    assert "time" in record


def test_log_format_json_is_what_production_uses(tmp_path):
    """A fresh process with LOG_FORMAT=json prints JSON lines to stderr, request id included."""
    code = (
        "import django, logging; django.setup();"
        "from omni.logging import request_id_var; request_id_var.set('abc123');"
        "logging.getLogger('omni.check').warning('hello %s', 'world')"
    )
    env = {**_clean_env(tmp_path), "LOG_FORMAT": "json", "DEBUG": "1"}

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    expected = {"message": "hello world", "level": "WARNING", "logger": "omni.check", "request_id": "abc123"}
    assert line == {**line, **expected}


def test_request_id_outside_a_request_is_a_dash():
    assert request_id_var.get() == "-"


# ---- security headers and probes ---------------------------------------------------------------
@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/login/")

    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_pages_load_no_script_from_another_host(client, associate):
    client.force_login(associate)

    html = client.get("/").content.decode()

    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts and all(src.startswith("/static/") for src in scripts)
    assert "<script>" not in html  # no inline script: the CSP would block it


@pytest.mark.django_db
def test_readyz_is_ok_when_migrations_are_applied(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# ---- production settings -----------------------------------------------------------------------
def _clean_env(tmp_path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "OMNI_TESTING", "DEBUG", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"}
    }
    env["OMNI_VAR_DIR"] = str(tmp_path)
    env["DJANGO_SETTINGS_MODULE"] = "omni.settings"
    return env


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**_clean_env(tmp_path), "DEBUG": "0"}

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_secret_key_and_secure_cookies(tmp_path):
    env = {**_clean_env(tmp_path), "DEBUG": "0", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "omni.example"}
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, s.ALLOWED_HOSTS)"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True", "['omni.example']"]


@pytest.mark.django_db
def test_an_unknown_api_url_is_a_json_404_in_the_apis_shape(client, associate):
    client.force_login(associate)
    api = client.get("/api/v1/customers/null,null/")
    page = client.get("/no-such-page/")

    assert (api.status_code, api["Content-Type"]) == (404, "application/json")
    assert api.json()["code"] == "not_found" and "/api/v1/customers/null,null/" in api.json()["message"]
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert "That page does not exist" in page.content.decode()


def test_an_unexpected_error_under_the_api_is_a_json_500_with_the_request_id(rf):
    handler = get_resolver().resolve_error_handler(500)  # what Django calls when a view raises
    api_request, page_request = rf.get("/api/v1/customers/"), rf.get("/stock/")
    api_request.request_id = "req-123"

    api, page = handler(api_request), handler(page_request)

    assert (api.status_code, api["Content-Type"]) == (500, "application/json")
    assert json.loads(api.content) == {
        "code": "server_error",
        "message": "Omni had a problem with this request. Quote the request id when you report it.",
        "extra": {"request_id": "req-123"},
    }
    assert page.status_code == 500 and b"Something went wrong" in page.content


@pytest.mark.django_db
def test_text_with_a_nul_character_is_a_400_everywhere_not_a_500(client, manager, store):
    # PostgreSQL refuses NUL in text: schemathesis found ?q=a%00b on the customer search (DataError,
    # a 500), and an order's contact name with \u0000 in JSON did the same.
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=manager)
    api = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    client.force_login(manager)

    search = client.get("/api/v1/customers/", {"q": "a\x00b"}, **api)
    created = client.post(
        "/api/v1/customers/", '{"name": "a\\u0000b", "email": "n@example.com"}', "application/json", **api
    )
    page = client.get("/customers/", {"q": "a\x00b"})
    form = client.post("/stock/adjust/", {"code": "x\x00", "delta": "1", "reason_code": "found"})
    order = client.post("/api/v1/orders/", '{"contact_name": "a\\u0000b", "lines": []}', "application/json", **api)

    assert (search.status_code, search.json()["code"]) == (400, "invalid")
    assert (created.status_code, created.json()["message"]) == (400, "Text may not contain NUL characters (\\x00).")
    assert (page.status_code, form.status_code, order.status_code) == (400, 400, 400)
    assert client.get("/customers/", {"q": "ab"}).status_code == 200
