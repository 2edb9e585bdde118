"""Inventory's domain errors, with stable codes."""

from __future__ import annotations

from typing import Any

from omni.errors import ApplicationError, ConflictError, NotFoundError


class InsufficientStockError(ConflictError):
    """An operation would overdraw a state. `extra` names what is available, where."""

    def __init__(self, message: str, extra: dict[str, Any]) -> None:
        super().__init__("insufficient_stock", message, extra)


class InvalidQuantityError(ApplicationError):
    def __init__(self, message: str = "Quantity must be a whole number greater than zero.") -> None:
        super().__init__("invalid_quantity", message)


class UnknownVariantError(NotFoundError):
    def __init__(self, *, sku: str | None = None, barcode: str | None = None) -> None:
        what = f"SKU {sku}" if sku else f"barcode {barcode}"
        super().__init__("unknown_variant", f"No product with {what}.", {"sku": sku, "barcode": barcode})


class LocationUnavailableError(ApplicationError):
    def __init__(self, message: str, location_id: int) -> None:
        super().__init__("location_unavailable", message, {"location_id": location_id})


class ReservationClosedError(ConflictError):
    def __init__(self, reservation_id: int, status: str) -> None:
        super().__init__(
            "reservation_closed",
            f"That hold is already {status}.",
            {"reservation_id": reservation_id, "status": status},
        )


class IdempotencyConflictError(ConflictError):
    def __init__(self, key: str) -> None:
        super().__init__(
            "idempotency_key_reused",
            "That idempotency key was already used for a different operation.",
            {"idempotency_key": key},
        )
