"""Querysets that take row locks. Always `of=("self",)` and ordered by pk, evaluated at once."""

from __future__ import annotations

from .models import Transfer, TransferLine, TransferRoute


def transfer_lock(*, transfer_id: int) -> Transfer | None:
    """Lock one transfer row (the state machine's mutex). Caller must be inside transaction.atomic."""
    return (
        Transfer.objects.select_for_update(of=("self",))
        .select_related("origin", "destination")
        .filter(pk=transfer_id)
        .first()
    )


def transfer_lines_lock(*, transfer_id: int) -> list[TransferLine]:
    """Lock a transfer's lines in pk order. Caller must hold the transfer's lock (transfer_lock)."""
    return list(
        TransferLine.objects.select_for_update(of=("self",))
        .select_related("variant")
        .filter(transfer_id=transfer_id)
        .order_by("pk")
    )


def transfer_route_lock(*, origin_id: int, destination_id: int) -> TransferRoute:
    """Create (if needed) and lock the lane's row: one join-or-create decision per lane at a time.

    Caller must be inside transaction.atomic.
    """
    TransferRoute.objects.bulk_create(
        [TransferRoute(origin_id=origin_id, destination_id=destination_id)], ignore_conflicts=True
    )
    return TransferRoute.objects.select_for_update(of=("self",)).get(origin_id=origin_id, destination_id=destination_id)
