"""Hooks that let higher apps take part in a customer's export and erasure.

customers sits below orders and online, so it cannot import them; yet an export must include
their orders and an erasure must scrub personal data they copied (a shipping name, a webhook
payload). Each higher app registers its part explicitly in its AppConfig.ready():

    from customers.privacy import register_export_section, register_eraser

    register_export_section("orders", orders.selectors.orders_export_for_customers)
    register_eraser("orders", orders.services.orders_erase_customer_data)

Contracts:
- an export section is `fn(*, customer_ids: list[int]) -> JSON-serialisable value`; its result is
  put under `sections[<name>]` of the export. `customer_ids` holds the customer and every record
  merged into it.
- an eraser is `fn(*, customer_ids: list[int], actor) -> None`; it runs inside the erasure's
  transaction (an exception rolls the whole erasure back), must keep sales figures for
  accounting and must not log personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ExportSection = Callable[..., Any]
Eraser = Callable[..., None]

_export_sections: dict[str, ExportSection] = {}
_erasers: dict[str, Eraser] = {}


def register_export_section(name: str, fn: ExportSection) -> None:
    _export_sections[name] = fn


def register_eraser(name: str, fn: Eraser) -> None:
    _erasers[name] = fn


def export_sections() -> dict[str, ExportSection]:
    return dict(_export_sections)


def erasers() -> dict[str, Eraser]:
    return dict(_erasers)
