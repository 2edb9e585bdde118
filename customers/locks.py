"""Querysets that take row locks. Always `of=("self",)`, ordered by pk, evaluated at once."""

from __future__ import annotations

from .models import Customer, LoyaltyAccount


def customers_lock(*, ids: list[int]) -> dict[int, Customer]:
    """Lock customer rows in pk order (merges lock two). Caller must be inside transaction.atomic."""
    rows = Customer.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk")
    return {row.pk: row for row in rows}


def loyalty_account_lock(*, customer_id: int) -> LoyaltyAccount | None:
    """Lock one customer's loyalty account (redemptions race on it). Caller must be in atomic."""
    return LoyaltyAccount.objects.select_for_update(of=("self",)).filter(customer_id=customer_id).first()


def loyalty_accounts_lock(*, customer_ids: list[int]) -> dict[int, LoyaltyAccount]:
    rows = LoyaltyAccount.objects.select_for_update(of=("self",)).filter(customer_id__in=customer_ids)
    return {row.customer_id: row for row in rows.order_by("pk")}
