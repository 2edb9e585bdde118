"""The fulfilment state machine, and how an order's status follows its fulfilments.

A fulfilment changes state only through `orders.services.fulfilment_transition`, which checks the
table below and writes an event. The order's status is not set by hand: it is recomputed from its
fulfilments after every transition (`order_status_for`).

    take now: placed -> collected -> returned
    ship:     placed -> allocated -> picking -> packed -> shipped -> delivered (-> returned)
    collect:  placed -> allocated [-> picking -> packed] -> ready_for_pickup -> collected (-> returned)
    any state before the goods leave us -> cancelled
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import FulfilmentKind, Status

S = Status

TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    FulfilmentKind.TAKE_NOW: {
        S.PLACED: frozenset({S.COLLECTED}),
        S.COLLECTED: frozenset({S.RETURNED}),
    },
    FulfilmentKind.SHIP: {
        S.PLACED: frozenset({S.ALLOCATED, S.CANCELLED}),
        S.ALLOCATED: frozenset({S.PICKING, S.CANCELLED}),
        S.PICKING: frozenset({S.PACKED, S.CANCELLED}),
        S.PACKED: frozenset({S.SHIPPED, S.PICKING, S.CANCELLED}),
        S.SHIPPED: frozenset({S.DELIVERED, S.RETURNED}),
        S.DELIVERED: frozenset({S.RETURNED}),
    },
    FulfilmentKind.COLLECT: {
        S.PLACED: frozenset({S.ALLOCATED, S.CANCELLED}),
        S.ALLOCATED: frozenset({S.PICKING, S.READY_FOR_PICKUP, S.CANCELLED}),
        S.PICKING: frozenset({S.PACKED, S.READY_FOR_PICKUP, S.CANCELLED}),
        S.PACKED: frozenset({S.READY_FOR_PICKUP, S.CANCELLED}),
        S.READY_FOR_PICKUP: frozenset({S.COLLECTED, S.CANCELLED}),
        S.COLLECTED: frozenset({S.RETURNED}),
    },
}

# How far along each state is; the order shows its least advanced open fulfilment.
PROGRESS: dict[str, int] = {
    S.PLACED: 0,
    S.ALLOCATED: 1,
    S.PICKING: 2,
    S.PACKED: 3,
    S.SHIPPED: 4,
    S.READY_FOR_PICKUP: 4,
    S.DELIVERED: 5,
    S.COLLECTED: 5,
    S.RETURNED: 6,
}

# States in which the goods have not left us: cancelling gives the committed stock back.
CANCELLABLE = frozenset({S.PLACED, S.ALLOCATED, S.PICKING, S.PACKED, S.READY_FOR_PICKUP})
# States in which the customer has the goods: they can be returned.
RETURNABLE = frozenset({S.SHIPPED, S.DELIVERED, S.COLLECTED})


def can_transition(kind: str, current: str, target: str) -> bool:
    return target in TRANSITIONS.get(kind, {}).get(current, frozenset())


def order_status_for(fulfilments: Iterable[tuple[str, str]]) -> str:
    """The order's status from its fulfilments' (kind, status) pairs.

    All cancelled -> cancelled. Otherwise ignore cancelled ones: all returned -> returned; else the
    least advanced of the others, with "delivered" and "collected" told apart by kind when every
    open fulfilment is done (a mix of shipped and collected goods reads "delivered").
    """
    pairs = list(fulfilments)
    live = [(kind, status) for kind, status in pairs if status != S.CANCELLED]
    if not live:
        return S.CANCELLED if pairs else S.PLACED
    open_ = [(kind, status) for kind, status in live if status != S.RETURNED]
    if not open_:
        return S.RETURNED
    _, status = min(open_, key=lambda pair: (PROGRESS[pair[1]], pair[0] != FulfilmentKind.SHIP))
    if PROGRESS[status] == PROGRESS[S.DELIVERED]:
        return S.DELIVERED if any(k == FulfilmentKind.SHIP for k, _ in open_) else S.COLLECTED
    return status
