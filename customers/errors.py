"""Customers' domain errors, with stable codes. Messages never contain personal data."""

from __future__ import annotations

from typing import Any

from omni.errors import ApplicationError, ConflictError, NotFoundError


class CustomerNotFoundError(NotFoundError):
    def __init__(self, customer_id: int | None) -> None:
        super().__init__("customer_not_found", "No such customer.", {"customer_id": customer_id})


class CustomerInactiveError(ConflictError):
    """The record was merged into another or erased; `extra.merged_into` points at the survivor."""

    def __init__(self, customer_id: int, status: str, merged_into: int | None = None) -> None:
        message = "This customer was merged into another record." if status == "merged" else "This customer was erased."
        super().__init__(
            "customer_inactive", message, {"customer_id": customer_id, "status": status, "merged_into": merged_into}
        )


class InvalidCustomerDataError(ApplicationError):
    """A field failed validation. `extra.fields` maps field names to messages (no values)."""

    def __init__(self, fields: dict[str, str]) -> None:
        first_field, first_message = next(iter(fields.items()))
        super().__init__("invalid_customer", f"{first_field}: {first_message}", {"fields": fields})


class DuplicateEmailError(ConflictError):
    def __init__(self, existing_id: int) -> None:
        super().__init__(
            "duplicate_email", "Another customer already has this email.", {"existing_customer_id": existing_id}
        )


class DuplicateIdentityError(ConflictError):
    def __init__(self, kind: str, existing_id: int) -> None:
        super().__init__(
            "duplicate_identity",
            "This card or account already belongs to another customer.",
            {"kind": kind, "existing_customer_id": existing_id},
        )


class MergeNotAllowedError(ConflictError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("merge_not_allowed", message, extra)


class InsufficientPointsError(ConflictError):
    def __init__(self, *, requested: int, balance: int) -> None:
        super().__init__(
            "insufficient_points",
            f"Only {balance} points are available.",
            {"requested": requested, "balance": balance},
        )


class InvalidPointsError(ApplicationError):
    def __init__(self, message: str = "Points must be a whole number greater than zero.") -> None:
        super().__init__("invalid_points", message)


class NothingToReturnError(ConflictError):
    def __init__(self, order_ref: str) -> None:
        super().__init__(
            "nothing_to_return", "No redeemed points are left to return for this order.", {"order_ref": order_ref}
        )


class IdempotencyConflictError(ConflictError):
    """A key was reused for a different operation (another customer, kind or amount)."""

    def __init__(self, key: str) -> None:
        super().__init__(
            "idempotency_conflict", "This idempotency key was already used for another operation.", {"key": key}
        )


class MatchReviewClosedError(ConflictError):
    def __init__(self, review_id: int, status: str) -> None:
        super().__init__(
            "review_closed", f"This review is already {status}.", {"review_id": review_id, "status": status}
        )
