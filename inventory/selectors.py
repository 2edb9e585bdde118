"""Every non-trivial read of stock: availability, stock lists, the ledger.

Each selector costs a fixed number of queries whatever the number of rows (the tests pin them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet

from .errors import UnknownVariantError
from .models import STOCK_STATES, Location, Product, StockLevel, StockMovement, Variant

# --- Availability ------------------------------------------------------------------------------

# One query: the variant, its product, and its level at every active location (zeros where the
# level row does not exist yet). Written as SQL because this is the hottest read in the system
# (till lookups, the online store, "find in another store"): the ORM would need two queries or
# six correlated subqueries for the same answer. The (variant, location) index serves the join.
# Only table names are interpolated; the value is a parameter.
_AVAILABILITY_SQL = f"""
SELECT v.id, v.sku, v.barcode, v.size, v.colour, v.price, v.currency, v.is_active,
       p.style, p.name, p.brand, p.category,
       l.id, l.code, l.name, l.kind, l.sells_online,
       s.on_hand, s.committed, s.reserved, s.safety_stock, s.unavailable, s.incoming, s.available,
       s.needs_count
FROM {Variant._meta.db_table} v
JOIN {Product._meta.db_table} p ON p.id = v.product_id
LEFT JOIN {Location._meta.db_table} l ON l.is_active
LEFT JOIN {StockLevel._meta.db_table} s ON s.variant_id = v.id AND s.location_id = l.id
WHERE v.{{column}} = %s
ORDER BY l.code
"""  # noqa: S608
_AVAILABILITY_BY = {
    "sku": _AVAILABILITY_SQL.format(column="sku"),
    "barcode": _AVAILABILITY_SQL.format(column="barcode"),
}
_STATES_AND_AVAILABLE = (*STOCK_STATES, "available")


def variant_availability(*, sku: str | None = None, barcode: str | None = None) -> dict[str, Any]:
    """The variant (by SKU or barcode) and its stock at every active location, with totals.

    Per location: every state, `available` clamped at zero (what can be sold) and `available_raw`
    (negative when safety stock exceeds what is left). Totals add the clamped figures, because a
    shortfall at one location does not reduce what another can sell. One query.

    Raises UnknownVariantError when no variant has that SKU or barcode.
    """
    if (sku is None) == (barcode is None):
        raise ValueError("Give exactly one of sku or barcode.")
    column, value = ("sku", sku) if sku is not None else ("barcode", barcode)
    with connection.cursor() as cursor:
        cursor.execute(_AVAILABILITY_BY[column], [value])
        rows = cursor.fetchall()
    if not rows:
        raise UnknownVariantError(sku=sku, barcode=barcode)
    first = rows[0]
    totals = dict.fromkeys(_STATES_AND_AVAILABLE, 0)
    locations = []
    for row in rows:
        if row[12] is None:  # no active location at all
            continue
        on_hand, committed, reserved, safety, unavailable, incoming, available_raw = (
            value or 0 for value in row[17:24]
        )
        available = available_raw if available_raw > 0 else 0
        locations.append(
            {
                "id": row[12],
                "code": row[13],
                "name": row[14],
                "kind": row[15],
                "sells_online": row[16],
                "on_hand": on_hand,
                "committed": committed,
                "reserved": reserved,
                "safety_stock": safety,
                "unavailable": unavailable,
                "incoming": incoming,
                "available": available,
                "available_raw": available_raw,
                "needs_count": bool(row[24]),
            }
        )
        totals["on_hand"] += on_hand
        totals["committed"] += committed
        totals["reserved"] += reserved
        totals["safety_stock"] += safety
        totals["unavailable"] += unavailable
        totals["incoming"] += incoming
        totals["available"] += available
    return {
        "variant": {
            "id": first[0],
            "sku": first[1],
            "barcode": first[2],
            "size": first[3],
            "colour": first[4],
            "price": str(first[5]),
            "currency": first[6],
            "is_active": first[7],
            "style": first[8],
            "name": first[9],
            "brand": first[10],
            "category": first[11],
        },
        "locations": locations,
        "totals": totals,
    }


# --- Catalogue lookups -------------------------------------------------------------------------


def variant_get(*, sku: str | None = None, barcode: str | None = None) -> Variant:
    """The variant with that SKU or barcode. Raises UnknownVariantError."""
    if (sku is None) == (barcode is None):
        raise ValueError("Give exactly one of sku or barcode.")
    variant = Variant.objects.filter(**({"sku": sku} if sku is not None else {"barcode": barcode})).first()
    if variant is None:
        raise UnknownVariantError(sku=sku, barcode=barcode)
    return variant


def variants_by_sku(*, skus: list[str]) -> dict[str, Variant]:
    """Variants keyed by SKU, in one query; unknown SKUs are absent."""
    return {variant.sku: variant for variant in Variant.objects.filter(sku__in=skus)}


def variants_by_barcode(*, barcodes: list[str]) -> dict[str, Variant]:
    """Variants keyed by barcode, in one query; unknown barcodes are absent."""
    return {variant.barcode: variant for variant in Variant.objects.filter(barcode__in=barcodes) if variant.barcode}


# --- Locations ---------------------------------------------------------------------------------


def location_list(*, include_inactive: bool = False) -> QuerySet[Location]:
    locations = Location.objects.all() if include_inactive else Location.objects.active()
    return locations.order_by("code")


def location_get(*, code: str) -> Location | None:
    return Location.objects.filter(code=code).first()


# --- Stock at a location -----------------------------------------------------------------------

LOCATION_STOCK_FIELDS = (
    "id",
    "sku",
    "barcode",
    "product_name",
    "brand",
    "category",
    "size",
    "colour",
    *STOCK_STATES,
    "available",
    "needs_count",
    "last_counted_at",
    "updated_at",
)


def location_stock_list(
    *,
    location_id: int,
    sku_prefix: str = "",
    category: str = "",
    brand: str = "",
    below: int | None = None,
    needs_count: bool | None = None,
) -> QuerySet[StockLevel, dict[str, Any]]:
    """Levels at one location as flat rows (one query per page), ordered by SKU (unique here).

    `below`: only levels whose available is below that figure (low stock). `sku_prefix` is
    case-sensitive, so the unique SKU index serves it.
    """
    levels = StockLevel.objects.filter(location_id=location_id)
    if sku_prefix:
        levels = levels.filter(variant__sku__startswith=sku_prefix)
    if category:
        levels = levels.filter(variant__product__category=category)
    if brand:
        levels = levels.filter(variant__product__brand=brand)
    if below is not None:
        levels = levels.filter(available__lt=below)
    if needs_count is not None:
        levels = levels.filter(needs_count=needs_count)
    return levels.annotate(
        sku=F("variant__sku"),
        barcode=F("variant__barcode"),
        product_name=F("variant__product__name"),
        brand=F("variant__product__brand"),
        category=F("variant__product__category"),
        size=F("variant__size"),
        colour=F("variant__colour"),
    ).values(*LOCATION_STOCK_FIELDS)


def stock_level_row(*, location_id: int, variant_id: int) -> dict[str, Any]:
    """One level's states as a dict (zeros when the level does not exist)."""
    row = (
        StockLevel.objects.filter(location_id=location_id, variant_id=variant_id)
        .values(*STOCK_STATES, "available")
        .first()
    )
    return row or dict.fromkeys((*STOCK_STATES, "available"), 0)


# --- The ledger --------------------------------------------------------------------------------

LEDGER_FIELDS = (
    "id",
    "created_at",
    "location_code",
    "sku",
    "state",
    "quantity",
    "reason",
    "reason_code",
    "note",
    "reference_type",
    "reference_id",
    "actor_label",
    "operation_key",
)


@dataclass(frozen=True)
class LedgerFilter:
    sku: str = ""
    location_id: int | None = None
    reason: str = ""
    since: datetime | None = None
    # None: every location; otherwise only these (the locations the reader may act for).
    allowed_location_ids: frozenset[int] | None = None


def ledger_list(*, filters: LedgerFilter) -> QuerySet[StockMovement, dict[str, Any]]:
    """Stock movements as flat rows, newest first (the caller paginates by id)."""
    movements = StockMovement.objects.all()
    if filters.allowed_location_ids is not None:
        movements = movements.filter(location_id__in=sorted(filters.allowed_location_ids))
    if filters.location_id is not None:
        movements = movements.filter(location_id=filters.location_id)
    if filters.sku:
        movements = movements.filter(variant__sku=filters.sku)
    if filters.reason:
        movements = movements.filter(reason=filters.reason)
    if filters.since is not None:
        movements = movements.filter(created_at__gte=filters.since)
    return movements.annotate(location_code=F("location__code"), sku=F("variant__sku")).values(*LEDGER_FIELDS)
