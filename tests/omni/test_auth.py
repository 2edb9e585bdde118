import pytest
from django.urls import reverse

from omni.models import LoginAttempt
from tests.factories.people import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_signs_in_and_redirects_home(client, associate):
    response = client.post(reverse("login"), {"username": "associate", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert LoginAttempt.objects.filter(username="associate", succeeded=True).count() == 1


def test_wrong_password_shows_message_and_is_recorded(client, associate):
    response = client.post(reverse("login"), {"username": "associate", "password": "nope"})

    assert response.status_code == 400
    assert b"do not match" in response.content
    assert LoginAttempt.objects.filter(username="associate", succeeded=False).count() == 1


def test_repeated_failures_lock_the_account_even_with_the_right_password(client, associate, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post(reverse("login"), {"username": "associate", "password": "nope"})

    response = client.post(reverse("login"), {"username": "associate", "password": PASSWORD})

    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_api_token_exchange(client, associate):
    response = client.post(
        "/api/v1/auth/token/",
        {"username": "associate", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert len(response.json()["token"]) == 40


def test_api_token_exchange_rejects_bad_password_with_clear_error(client, associate):
    response = client.post(
        "/api/v1/auth/token/", {"username": "associate", "password": "x"}, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
