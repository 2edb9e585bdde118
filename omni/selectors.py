"""Reads about staff: where they work."""

from __future__ import annotations

from typing import Any

from inventory.models import Location
from omni.roles import can_act_at, user_location_ids


def user_current_location(*, user: Any, chosen_id: int | None) -> Location | None:
    """The location chosen in the switcher if the user may act there, else their home location."""
    if chosen_id is not None and can_act_at(user, chosen_id):
        location = Location.objects.filter(pk=chosen_id).first()
        if location is not None:
            return location
    if user.home_location_id:
        return Location.objects.filter(pk=user.home_location_id).first()
    return Location.objects.active().order_by("kind", "code").first() if user.is_superuser else None


def user_switchable_locations(*, user: Any) -> list[Location]:
    allowed = user_location_ids(user)
    locations = Location.objects.active().order_by("kind", "code")
    if allowed is not None:
        locations = locations.filter(pk__in=allowed)
    return list(locations)
