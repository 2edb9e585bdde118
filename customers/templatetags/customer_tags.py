"""Template helpers for customer screens."""

from __future__ import annotations

from typing import Any

from django import template

from customers.normalize import format_phone

register = template.Library()


@register.filter
def phone(value: str) -> str:
    """An E.164 number as people read it: national format at home, international otherwise."""
    return format_phone(value or "")


@register.inclusion_tag("customers/picker.html#picker")
def customer_picker(target: str) -> dict[str, Any]:
    """Embed the customer picker in a page as it is rendered (see the contract in picker.html).

    Rendered with the page rather than loaded after it, so a search typed the moment the page
    shows is never lost to a fragment htmx has not bound yet.
    """
    from customers.views import picker_context

    return picker_context(target=target)
