"""Template helpers for customer screens."""

from __future__ import annotations

from django import template

from customers.normalize import format_phone

register = template.Library()


@register.filter
def phone(value: str) -> str:
    """An E.164 number as people read it: national format at home, international otherwise."""
    return format_phone(value or "")
