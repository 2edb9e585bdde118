"""Querysets that take row locks. Always `of=("self",)` and ordered by pk, evaluated at once.

Callers must be inside transaction.atomic.
"""

from __future__ import annotations

from .models import Cart, Fulfilment, GiftCard, Order, OrderLine


def order_lock(*, order_id: int) -> Order | None:
    return Order.objects.select_for_update(of=("self",)).filter(pk=order_id).first()


def order_lines_lock(*, order_id: int) -> list[OrderLine]:
    return list(OrderLine.objects.select_for_update(of=("self",)).filter(order_id=order_id).order_by("pk"))


def fulfilment_lock(*, fulfilment_id: int) -> Fulfilment | None:
    return (
        Fulfilment.objects.select_for_update(of=("self",))
        .select_related("order", "pickup_location", "source_location")
        .filter(pk=fulfilment_id)
        .first()
    )


def fulfilments_lock(*, order_id: int) -> list[Fulfilment]:
    return list(Fulfilment.objects.select_for_update(of=("self",)).filter(order_id=order_id).order_by("pk"))


def gift_cards_lock(*, codes: list[str]) -> dict[str, GiftCard]:
    cards = GiftCard.objects.select_for_update(of=("self",)).filter(code__in=codes).order_by("pk")
    return {card.code: card for card in cards}


def gift_cards_lock_by_id(*, ids: list[int]) -> dict[int, GiftCard]:
    cards = GiftCard.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk")
    return {card.pk: card for card in cards}


def cart_lock(*, cart_id: int) -> Cart | None:
    return Cart.objects.select_for_update(of=("self",)).filter(pk=cart_id).first()
