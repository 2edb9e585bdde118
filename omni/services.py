"""Writes about staff: logins (with lockout) and the location switcher."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.db.models import Q
from django.utils import timezone

from omni.errors import ApplicationError, ForbiddenError
from omni.models import LoginAttempt
from omni.roles import can_act_at


class LoginLockedError(ApplicationError):
    status_code = 429


def login_locked(*, username: str, ip_address: str | None) -> bool:
    """True when the username or the client address failed too often within the lockout window."""
    since = timezone.now() - timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    by_who = Q(username__iexact=username)
    if ip_address:
        by_who |= Q(ip_address=ip_address)
    failures = LoginAttempt.objects.filter(by_who, succeeded=False, created_at__gte=since).count()
    return failures >= settings.LOGIN_FAILURE_LIMIT


def user_authenticate(*, request: Any, username: str, password: str, ip_address: str | None, channel: str) -> Any:
    """Check credentials, recording the attempt. Raises LoginLockedError or ApplicationError."""
    username = username.strip()
    if login_locked(username=username, ip_address=ip_address):
        LoginAttempt.objects.create(username=username, ip_address=ip_address, succeeded=False, channel=channel)
        minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
        raise LoginLockedError(
            "login_locked", f"Too many failed sign-ins. Try again in {minutes} minutes or ask a manager."
        )
    user = authenticate(request, username=username, password=password)
    LoginAttempt.objects.create(username=username, ip_address=ip_address, succeeded=user is not None, channel=channel)
    if user is None:
        raise ApplicationError("invalid_credentials", "That username and password do not match.")
    return user


def user_switch_location(*, user: Any, location_id: int) -> None:
    if not can_act_at(user, location_id):
        raise ForbiddenError("forbidden_location", "You cannot work for that location.")
