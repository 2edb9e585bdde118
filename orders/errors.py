"""Orders' domain errors, with stable codes."""

from __future__ import annotations

from typing import Any

from omni.errors import ApplicationError, ConflictError, ForbiddenError, NotFoundError


class OrderNotFoundError(NotFoundError):
    def __init__(self, reference: object = None) -> None:
        super().__init__("order_not_found", "No such order.", {"order": str(reference) if reference else None})


class FulfilmentNotFoundError(NotFoundError):
    def __init__(self, fulfilment_id: object = None) -> None:
        super().__init__("fulfilment_not_found", "No such fulfilment.", {"fulfilment_id": fulfilment_id})


class InvalidOrderError(ApplicationError):
    """The request does not describe a valid order. `extra.field` names the culprit when known."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("invalid_order", message, extra)


class InvalidAmountError(ApplicationError):
    def __init__(self, field: str = "amount") -> None:
        super().__init__(
            "invalid_amount", f"{field.replace('_', ' ').capitalize()}: give an amount like 12.50.", {"field": field}
        )


class InvalidDiscountError(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__("invalid_discount", message)


class ApprovalRequiredError(ForbiddenError):
    """A discount above the threshold needs a manager: their credentials or PIN."""

    def __init__(self, percent: object, threshold: object) -> None:
        super().__init__(
            "approval_required",
            f"A discount above {threshold}% needs a manager's approval.",
            {"percent": str(percent), "threshold": str(threshold)},
        )


class ApprovalRejectedError(ForbiddenError):
    def __init__(self) -> None:
        super().__init__("approval_rejected", "Those are not a manager's credentials for this store.")


class CustomerRequiredError(ApplicationError):
    def __init__(self) -> None:
        super().__init__("customer_required", "Ship and collect lines need a customer: look them up or add them first.")


class AddressRequiredError(ApplicationError):
    def __init__(self) -> None:
        super().__init__("address_required", "Ship lines need a delivery address (street, city and postcode).")


class PaymentMismatchError(ApplicationError):
    def __init__(self, *, total: object, paid: object) -> None:
        super().__init__(
            "payment_mismatch",
            f"The tenders add up to {paid} but the order comes to {total}.",
            {"total": str(total), "paid": str(paid)},
        )


class InvalidTenderError(ApplicationError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("invalid_tender", message, extra)


class GiftCardError(ConflictError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("gift_card", message, extra)


class OutOfStockError(ConflictError):
    """Not enough stock where it was wanted. The message says where else it is available."""

    def __init__(self, message: str, extra: dict[str, Any]) -> None:
        super().__init__("insufficient_stock", message, extra)


class InvalidTransitionError(ConflictError):
    def __init__(self, *, kind: str, current: str, target: str) -> None:
        super().__init__(
            "invalid_transition",
            f"A {kind.replace('_', ' ')} fulfilment that is {current.replace('_', ' ')} "
            f"cannot become {target.replace('_', ' ')}.",
            {"kind": kind, "status": current, "target": target},
        )


class PickError(ConflictError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("pick_error", message, extra)


class CollectionCodeError(ConflictError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("collection_code", message, extra)


class CancelNotAllowedError(ConflictError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("cancel_not_allowed", message, extra)


class ReturnNotAllowedError(ConflictError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("return_not_allowed", message, extra)


class IdempotencyConflictError(ConflictError):
    def __init__(self, key: str) -> None:
        super().__init__(
            "idempotency_key_reused", "That idempotency key was already used for a different request.", {"key": key}
        )


class CartError(ApplicationError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("cart", message, extra)
