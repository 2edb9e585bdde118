from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from omni.roles import Role, has_role, user_roles


def omni(request: HttpRequest) -> dict[str, Any]:
    """Navigation facts for the base layout: the user's roles and current location."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"current_location": None, "roles": frozenset()}
    return {
        "current_location": getattr(request, "location", None),
        "roles": user_roles(user),
        "is_manager": has_role(user, Role.MANAGER),
        "is_store_staff": has_role(user, Role.ASSOCIATE, Role.MANAGER),
        "is_warehouse": has_role(user, Role.WAREHOUSE),
    }
