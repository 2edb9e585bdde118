"""Transfers' domain errors, with stable codes."""

from __future__ import annotations

from typing import Any

from omni.errors import ApplicationError, ConflictError, NotFoundError


class TransferNotFoundError(NotFoundError):
    def __init__(self, transfer_id: Any) -> None:
        super().__init__("transfer_not_found", "That transfer does not exist.", {"transfer_id": transfer_id})


class TransferStateError(ConflictError):
    """The transfer is not in a state that allows the action (e.g. dispatching a received transfer)."""

    def __init__(self, *, code: str, status: str, action: str) -> None:
        super().__init__(
            "transfer_wrong_state",
            f"Cannot {action} transfer {code}: it is {status.replace('_', ' ')}.",
            {"transfer": code, "status": status, "action": action},
        )


class InvalidTransferError(ApplicationError):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__("invalid_transfer", message, extra)


class ScanError(ApplicationError):
    """A scan that cannot count: unknown barcode, not on the transfer, more than planned."""

    def __init__(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(code, message, extra)
