"""Card payment terminals: the interface Omni talks to, and the manual-entry implementation.

A terminal adapter charges or refunds a card outside any database transaction (calls to the
outside world never happen while stock rows are locked). The tablet either asks the configured
adapter to take the payment, or - with `ManualEntryTerminal`, the default - the associate runs the
standalone terminal and types its reference and the card's last four digits.

Configure another adapter with OMNI_PAYMENT_TERMINAL = "dotted.path.ToClass" (a class with no
constructor arguments implementing `TerminalAdapter`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from .errors import InvalidTenderError

_LAST4 = re.compile(r"^[0-9]{4}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")


@dataclass(frozen=True)
class CardCharge:
    """What a terminal reports for an approved card payment."""

    terminal_ref: str
    last4: str
    brand: str = ""


@dataclass(frozen=True)
class CardRefund:
    terminal_ref: str


class TerminalAdapter(Protocol):
    def charge(self, *, amount: Decimal, reference: str, entered_ref: str = "", entered_last4: str = "") -> CardCharge:
        """Take `amount` from a card. `entered_*` carry what an associate typed (manual entry)."""
        ...

    def refund(self, *, amount: Decimal, original_ref: str, reference: str) -> CardRefund:
        """Give `amount` back to the card of the original payment."""
        ...


class ManualEntryTerminal:
    """A standalone terminal: the associate keys in its approval reference and the last four digits."""

    def charge(self, *, amount: Decimal, reference: str, entered_ref: str = "", entered_last4: str = "") -> CardCharge:
        ref = (entered_ref or "").strip()
        last4 = (entered_last4 or "").strip()
        if not _LAST4.match(last4):
            raise InvalidTenderError("Card: enter the last four digits of the card.", {"field": "card_last4"})
        if not _REFERENCE.match(ref):
            raise InvalidTenderError(
                "Card: enter the terminal's approval reference (letters and digits).", {"field": "terminal_ref"}
            )
        return CardCharge(terminal_ref=ref, last4=last4)

    def refund(self, *, amount: Decimal, original_ref: str, reference: str) -> CardRefund:
        # The associate refunds on the standalone terminal; we record against the original.
        return CardRefund(terminal_ref=f"refund:{original_ref}"[:64])


def terminal() -> TerminalAdapter:
    path = getattr(settings, "OMNI_PAYMENT_TERMINAL", "orders.terminal.ManualEntryTerminal")
    adapter: TerminalAdapter = import_string(path)()
    return adapter
