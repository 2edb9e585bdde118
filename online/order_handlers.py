"""Handlers for topics whose effects live in higher apps (customers, orders): filled in as they land."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HANDLERS: dict[str, Callable[[dict[str, Any], Any], str]] = {}
