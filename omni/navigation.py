"""The top-bar links and home-page tiles, filtered by role.

Each app lists its own screens in an optional `<app>/navigation.py`:

    from omni.navigation import NavLink
    from omni.roles import STORE_STAFF

    LINKS = [
        NavLink("orders:pos", "Sell", roles=STORE_STAFF, tile="Ring up a sale, scan items", order=10),
    ]

A link whose URL name does not resolve (the screen is not written yet) is left out instead of
breaking every page, so an app can list a screen before it exists. `roles=()` means every
signed-in member of staff; admins see everything. Links with a `tile` text also appear as tiles
on the home page.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.apps import apps
from django.urls import NoReverseMatch, reverse

from omni.roles import Role, has_role


@dataclass(frozen=True)
class NavLink:
    url_name: str
    label: str
    roles: tuple[Role, ...] = ()
    tile: str = ""  # the home tile's one-line description; empty = top bar only
    order: int = 100  # smaller comes first
    in_top_bar: bool = True


@dataclass(frozen=True)
class ResolvedLink:
    url: str
    label: str
    tile: str
    in_top_bar: bool
    active: bool = False


# The platform's own links. Admin is reached through the back office (Django admin).
PLATFORM_LINKS = [
    NavLink("home", "Home", order=0, in_top_bar=True),
    NavLink("admin:index", "Back office", roles=(Role.ADMIN,), tile="Staff, roles, locations, API tokens", order=900),
    NavLink("api-docs", "API", roles=(Role.ADMIN,), tile="REST API reference (OpenAPI)", order=910, in_top_bar=False),
]


@cache
def all_links() -> tuple[NavLink, ...]:
    """Every link the installed apps declare, in display order (read once per process)."""
    links = list(PLATFORM_LINKS)
    for config in apps.get_app_configs():
        if config.name == "omni":
            continue
        try:
            module = importlib.import_module(f"{config.name}.navigation")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.navigation":
                raise  # the module exists but imports something missing: a real bug
            continue
        links.extend(getattr(module, "LINKS", []))
    return tuple(sorted(links, key=lambda link: (link.order, link.label)))


def _reverse(url_name: str) -> str | None:
    try:
        return reverse(url_name)
    except NoReverseMatch:
        return None


def links_for(user: Any, *, path: str = "") -> list[ResolvedLink]:
    """The links this user may follow, resolved to URLs; `active` marks the one `path` is under.

    Costs one query (the user's groups) unless the roles are already cached on the user.
    """
    if not getattr(user, "is_authenticated", False):
        return []
    candidates = []
    for link in all_links():
        if link.roles and not has_role(user, *link.roles):
            continue
        url = _reverse(link.url_name)
        if url is not None:
            candidates.append((link, url))
    # The longest URL that prefixes the path is the current section ("/" only matches itself).
    matches = [url for _, url in candidates if path == url or (url != "/" and path.startswith(url))]
    current = max(matches, key=len, default=None)
    return [
        ResolvedLink(url=url, label=link.label, tile=link.tile, in_top_bar=link.in_top_bar, active=url == current)
        for link, url in candidates
    ]
