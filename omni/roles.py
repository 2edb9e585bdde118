"""Roles and locations: who may do what, where.

Roles are Django groups created by a migration. A role check is always paired with a location
check: a store manager manages their own store, not every store. Superusers and the admin role
act everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.contrib.auth.views import redirect_to_login
from rest_framework.permissions import BasePermission

from omni.errors import ForbiddenError

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


class Role(StrEnum):
    ASSOCIATE = "store_associate"
    MANAGER = "store_manager"
    WAREHOUSE = "warehouse_operator"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


# Store work: associates, and managers who can do everything an associate can.
STORE_STAFF = (Role.ASSOCIATE, Role.MANAGER)
# Anyone who handles stock physically.
STOCK_STAFF = (Role.ASSOCIATE, Role.MANAGER, Role.WAREHOUSE)
MANAGERS = (Role.MANAGER,)


def user_roles(user: Any) -> frozenset[Role]:
    """The user's roles, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_omni_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role in Role if role.value in names)
        if user.is_superuser:
            cached = cached | {Role.ADMIN}
        user._omni_roles = cached
    return cached


def has_role(user: Any, *roles: Role) -> bool:
    """True when the user holds one of `roles`; admins hold every role."""
    return holds_role(user_roles(user), *roles)


def holds_role(held: frozenset[Role], *roles: Role) -> bool:
    """`has_role` for a set of roles already known (e.g. read from a cached API token)."""
    return Role.ADMIN in held or any(role in held for role in roles)


def is_admin(user: Any) -> bool:
    return Role.ADMIN in user_roles(user)


def user_location_ids(user: Any) -> frozenset[int] | None:
    """The locations a user may act for; None means every location (admins)."""
    if is_admin(user):
        return None
    cached = getattr(user, "_omni_location_ids", None)
    if cached is None:
        ids = set(user.extra_locations.values_list("pk", flat=True))
        if user.home_location_id:
            ids.add(user.home_location_id)
        cached = frozenset(ids)
        user._omni_location_ids = cached
    return cached


def can_act_at(user: Any, location_id: int | None) -> bool:
    if location_id is None or not getattr(user, "is_authenticated", False):
        return False
    allowed = user_location_ids(user)
    return allowed is None or location_id in allowed


def ensure_role(user: Any, *roles: Role) -> None:
    """Raise ForbiddenError unless the user holds one of `roles`."""
    if not has_role(user, *roles):
        wanted = " or ".join(role.label.lower() for role in roles)
        raise ForbiddenError("forbidden_role", f"This needs a {wanted}.", {"roles": [r.value for r in roles]})


def ensure_location(user: Any, location_id: int | None) -> None:
    """Raise ForbiddenError unless the user may act for the location."""
    if not can_act_at(user, location_id):
        raise ForbiddenError("forbidden_location", "You cannot act for that location.", {"location_id": location_id})


def ensure_role_at(user: Any, location_id: int | None, *roles: Role) -> None:
    ensure_role(user, *roles)
    ensure_location(user, location_id)


def role_required(*roles: Role) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Page decorator: anonymous users go to the login page; users without the role get 403."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            ensure_role(request.user, *roles)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


class HasRole(BasePermission):
    """DRF permission: `permission_classes = [HasRole.of(Role.MANAGER)]`."""

    roles: tuple[Role, ...] = ()
    message = "Your role does not allow this."

    @classmethod
    def of(cls, *roles: Role) -> type[HasRole]:
        return type(f"HasRole_{'_'.join(r.value for r in roles)}", (cls,), {"roles": roles})

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and has_role(request.user, *self.roles))


# Model permissions each role's group gets (app_label.codename patterns; "*" = any model).
ROLE_PERMISSIONS: dict[Role, Iterable[str]] = {
    Role.ASSOCIATE: [
        "inventory.view_*",
        "customers.view_*",
        "customers.add_customer",
        "orders.view_*",
        "orders.add_order",
    ],
    Role.MANAGER: ["inventory.view_*", "inventory.add_stockmovement", "customers.*", "orders.*"],
    Role.WAREHOUSE: ["inventory.view_*", "inventory.add_stockmovement", "orders.view_*", "orders.change_*"],
    Role.ADMIN: ["*"],
}
