from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from omni.navigation import links_for
from omni.roles import Role, has_role, user_roles


def omni(request: HttpRequest) -> dict[str, Any]:
    """Navigation facts for the base layout: roles, current location, links, switchable locations.

    Everything that needs a query is lazy: an htmx fragment rendered with the request context
    but not extending base.html costs nothing here. A full page costs, once per request: the
    user's groups (shared with every role check), the nav links (no query) and the locations
    the user may switch to (one or two queries).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"current_location": None, "roles": frozenset(), "nav_links": [], "home_tiles": []}

    def nav() -> list[Any]:
        return links_for(user, path=request.path)

    def switchable() -> list[Any]:
        from omni.selectors import user_switchable_locations

        return user_switchable_locations(user=user)

    links = SimpleLazyObject(nav)
    return {
        "current_location": getattr(request, "location", None),
        "roles": SimpleLazyObject(lambda: user_roles(user)),
        "is_manager": SimpleLazyObject(lambda: has_role(user, Role.MANAGER)),
        "is_store_staff": SimpleLazyObject(lambda: has_role(user, Role.ASSOCIATE, Role.MANAGER)),
        "is_warehouse": SimpleLazyObject(lambda: has_role(user, Role.WAREHOUSE)),
        "nav_links": SimpleLazyObject(lambda: [link for link in links if link.in_top_bar]),
        "home_tiles": SimpleLazyObject(lambda: [link for link in links if link.tile]),
        "switchable_locations": SimpleLazyObject(switchable),
    }
