"""Every non-trivial read of stock: availability, stock lists, the ledger.

Each selector costs a fixed number of queries whatever the number of rows (the tests pin them).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import F, Q, QuerySet

from .errors import UnknownVariantError
from .models import STOCK_STATES, Location, Product, StockLevel, StockMovement, Variant
from .prepared import fetch_prepared

# --- Availability ------------------------------------------------------------------------------

# One query: the variant, its product, and its level at every active location (zeros where the
# level row does not exist yet). Written as SQL because this is the hottest read in the system
# (till lookups, the online store, "find in another store"): the ORM would need two queries or
# six correlated subqueries for the same answer, and compiling it costs more CPU than running it.
# Zeros, the clamp and the totals are computed by the database so Python only zips rows into dicts.
# Only table names are interpolated; the value is a parameter.
_AVAILABILITY_SQL = f"""
SELECT v.id, v.sku, v.barcode, v.size, v.colour, v.price, v.currency, v.is_active,
       p.style, p.name, p.brand, p.category,
       l.id, l.code, l.name, l.kind, l.sells_online,
       COALESCE(s.on_hand, 0), COALESCE(s.committed, 0), COALESCE(s.reserved, 0),
       COALESCE(s.safety_stock, 0), COALESCE(s.unavailable, 0), COALESCE(s.incoming, 0),
       CASE WHEN s.available > 0 THEN s.available ELSE 0 END,
       COALESCE(s.available, 0),
       COALESCE(s.needs_count, FALSE)
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
_VARIANT_KEYS = ("id", "sku", "barcode", "size", "colour", "price", "currency", "is_active")
_PRODUCT_KEYS = ("style", "name", "brand", "category")
_LOCATION_KEYS = (
    "id",
    "code",
    "name",
    "kind",
    "sells_online",
    *STOCK_STATES,
    "available",
    "available_raw",
    "needs_count",
)
_TOTAL_KEYS = (*STOCK_STATES, "available")


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
    rows = fetch_prepared(_AVAILABILITY_BY[column], [value])
    if not rows:
        raise UnknownVariantError(sku=sku, barcode=barcode)
    first = rows[0]
    variant = dict(zip(_VARIANT_KEYS, first[:8], strict=True))
    variant["price"] = str(variant["price"])
    variant["is_active"] = bool(variant["is_active"])
    variant.update(zip(_PRODUCT_KEYS, first[8:12], strict=True))
    stocked = [row for row in rows if row[12] is not None]  # no active location at all: no rows
    locations = [dict(zip(_LOCATION_KEYS, row[12:], strict=True)) for row in stocked]
    if connection.vendor != "postgresql":  # SQLite answers booleans as 0/1
        for location in locations:
            location["sells_online"] = bool(location["sells_online"])
            location["needs_count"] = bool(location["needs_count"])
    columns = list(zip(*(row[17:24] for row in stocked), strict=True)) or [()] * len(_TOTAL_KEYS)
    totals = {key: sum(column) for key, column in zip(_TOTAL_KEYS, columns, strict=True)}
    return {"variant": variant, "locations": locations, "totals": totals}


def _availability_json_sql(column: str) -> str:
    """The availability answer built as JSON text by PostgreSQL itself (one row, or none).

    The variant's levels are read in one range scan of the (variant, location) index and then
    matched to the active locations, which is about twice as fast as probing the level of each
    location in turn (the plan PostgreSQL picks for the plain join).
    """
    states = ", ".join(f"COALESCE(s.{state}, 0) AS {state}" for state in STOCK_STATES)
    totals = ", ".join(f"'{state}', COALESCE(SUM({state}), 0)" for state in (*STOCK_STATES, "available"))
    return f"""
WITH found AS MATERIALIZED (
    SELECT v.id, v.sku, v.barcode, v.size, v.colour, v.price, v.currency, v.is_active,
           p.style, p.name, p.brand, p.category
    FROM {Variant._meta.db_table} v JOIN {Product._meta.db_table} p ON p.id = v.product_id
    WHERE v.{column} = %s
),
levels AS MATERIALIZED (
    SELECT * FROM {StockLevel._meta.db_table} WHERE variant_id = (SELECT id FROM found)
),
per_location AS (
    SELECT l.id, l.code, l.name, l.kind, l.sells_online, {states},
           CASE WHEN s.available > 0 THEN s.available ELSE 0 END AS available,
           COALESCE(s.available, 0) AS available_raw,
           COALESCE(s.needs_count, FALSE) AS needs_count
    FROM {Location._meta.db_table} l LEFT JOIN levels s ON s.location_id = l.id
    WHERE l.is_active
)
SELECT json_build_object(
    'variant', json_build_object(
        'id', f.id, 'sku', f.sku, 'barcode', f.barcode, 'size', f.size, 'colour', f.colour,
        'price', f.price::text, 'currency', f.currency, 'is_active', f.is_active,
        'style', f.style, 'name', f.name, 'brand', f.brand, 'category', f.category),
    'locations', (SELECT COALESCE(json_agg(r ORDER BY r.code), '[]') FROM per_location r),
    'totals', (SELECT json_build_object({totals}) FROM per_location)
)::text
FROM found f
"""  # noqa: S608


_AVAILABILITY_JSON_BY = {"sku": _availability_json_sql("sku"), "barcode": _availability_json_sql("barcode")}


def variant_availability_json(*, sku: str | None = None, barcode: str | None = None) -> str:
    """`variant_availability` as a JSON document, for the API's hot path. One query.

    On PostgreSQL the database builds the document (json_agg): Python neither loads fifty rows nor
    encodes them, which was most of a lookup's CPU. Elsewhere it encodes `variant_availability`.
    Raises UnknownVariantError.
    """
    if (sku is None) == (barcode is None):
        raise ValueError("Give exactly one of sku or barcode.")
    if connection.vendor != "postgresql":
        return json.dumps(variant_availability(sku=sku, barcode=barcode), separators=(",", ":"))
    column, value = ("sku", sku) if sku is not None else ("barcode", barcode)
    rows = fetch_prepared(_AVAILABILITY_JSON_BY[column], [value])
    if not rows:
        raise UnknownVariantError(sku=sku, barcode=barcode)
    return str(rows[0][0])


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


# --- Tablet pages (inventory.views) ------------------------------------------------------------

_LETTER_SIZES = ("XXXS", "XXS", "XS", "S", "M", "L", "XL", "XXL", "2XL", "XXXL", "3XL", "4XL", "5XL")
_LETTER_SIZE_RANK = {size: rank for rank, size in enumerate(_LETTER_SIZES)}
_LEADING_NUMBER = re.compile(r"^(\d+(?:[.,]\d+)?)")


def size_sort_key(size: str) -> tuple[int, float, str]:
    """Letter sizes in wearing order (XS < S < M ...), then numeric sizes by value, then the rest."""
    label = size.strip().upper()
    if label in _LETTER_SIZE_RANK:
        return (0, float(_LETTER_SIZE_RANK[label]), label)
    match = _LEADING_NUMBER.match(label)
    if match:
        return (1, float(match.group(1).replace(",", ".")), label)
    return (2, 0.0, label)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class NearLocation:
    location: Location
    distance_km: float | None  # None: either end has no coordinates
    is_here: bool


def locations_nearest_first(*, origin: Location | None, locations: Iterable[Location]) -> list[NearLocation]:
    """The origin first, then by distance from it (haversine), then those without coordinates by name.

    In Python: a retailer has at most a few hundred locations, already loaded for the page.
    """
    origin_point = (
        (float(origin.latitude), float(origin.longitude))
        if origin is not None and origin.latitude is not None and origin.longitude is not None
        else None
    )
    near = []
    for location in locations:
        is_here = origin is not None and location.pk == origin.pk
        distance = None
        if origin_point is not None and location.latitude is not None and location.longitude is not None:
            distance = haversine_km(*origin_point, float(location.latitude), float(location.longitude))
        near.append(NearLocation(location=location, distance_km=distance, is_here=is_here))
    return sorted(
        near,
        key=lambda n: (
            not n.is_here,
            n.distance_km is None,
            n.distance_km or 0.0,
            n.location.name.casefold(),
        ),
    )


@dataclass(frozen=True)
class GridCell:
    location_id: int
    variant_id: int
    available: int  # what can be sold here: never below zero
    on_hand: int
    needs_count: bool


@dataclass(frozen=True)
class GridRow:
    place: NearLocation
    cells: list[GridCell]
    total: int


@dataclass(frozen=True)
class ProductStockGrid:
    product: Product
    colours: list[str]
    colour: str
    variants: list[Variant]  # of `colour`, in size order: the columns
    rows: list[GridRow]  # one per active location, nearest first
    totals: list[int]  # available per column, all locations

    @property
    def variant_ids(self) -> list[int]:
        return [variant.pk for variant in self.variants]


def product_stock_grid(*, product_id: int, colour: str | None, origin: Location | None) -> ProductStockGrid | None:
    """A product's available stock, sizes (of one colour) by locations nearest first. Four queries.

    None when there is no such product. An unknown colour falls back to the first colour.
    """
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        return None
    variants = list(Variant.objects.filter(product_id=product_id, is_active=True))
    colours = sorted({variant.colour for variant in variants}, key=str.casefold)
    chosen = colour if colour in colours else (colours[0] if colours else "")
    shown = sorted((v for v in variants if v.colour == chosen), key=lambda v: (size_sort_key(v.size), v.sku))
    places = locations_nearest_first(origin=origin, locations=Location.objects.active())
    levels = {
        (location_id, variant_id): (available, on_hand, needs_count)
        for location_id, variant_id, available, on_hand, needs_count in StockLevel.objects.filter(
            variant_id__in=[v.pk for v in shown]
        ).values_list("location_id", "variant_id", "available", "on_hand", "needs_count")
    }
    rows = []
    totals = [0] * len(shown)
    for place in places:
        cells = []
        for column, variant in enumerate(shown):
            available, on_hand, needs_count = levels.get((place.location.pk, variant.pk), (0, 0, False))
            cell = GridCell(place.location.pk, variant.pk, max(available, 0), on_hand, needs_count)
            totals[column] += cell.available
            cells.append(cell)
        rows.append(GridRow(place=place, cells=cells, total=sum(cell.available for cell in cells)))
    return ProductStockGrid(product=product, colours=colours, colour=chosen, variants=shown, rows=rows, totals=totals)


@dataclass(frozen=True)
class LevelBreakdown:
    location: Location
    variant: Variant
    states: dict[str, int]  # every state plus `available` (raw: negative when safety stock exceeds it)
    needs_count: bool
    last_counted_at: datetime | None
    updated_at: datetime | None


def level_breakdown(*, location_id: int, variant_id: int) -> LevelBreakdown | None:
    """One level in every state (zeros when it does not exist yet). None for an unknown variant or location."""
    variant = Variant.objects.select_related("product").filter(pk=variant_id).first()
    location = Location.objects.filter(pk=location_id).first()
    if variant is None or location is None:
        return None
    level = StockLevel.objects.filter(location_id=location_id, variant_id=variant_id).first()
    states = {state: getattr(level, state) if level else 0 for state in (*STOCK_STATES, "available")}
    return LevelBreakdown(
        location=location,
        variant=variant,
        states=states,
        needs_count=bool(level and level.needs_count),
        last_counted_at=level.last_counted_at if level else None,
        updated_at=level.updated_at if level else None,
    )


def variant_find(*, code: str) -> Variant | None:
    """The variant a scanned or typed code names: its barcode, or its SKU (as typed or upper-cased). One query."""
    code = code.strip()
    if not code:
        return None
    matches = list(
        Variant.objects.select_related("product").filter(Q(barcode=code) | Q(sku=code) | Q(sku=code.upper()))[:3]
    )
    matches.sort(key=lambda v: (v.barcode != code, v.sku != code))
    return matches[0] if matches else None


@dataclass(frozen=True)
class SearchHit:
    product: Product
    colours: list[str]
    sizes: list[str]
    variant: Variant | None  # the variant whose SKU or barcode matched, if any


def product_search(*, query: str, limit: int = 20) -> list[SearchHit]:
    """Products matching a SKU or barcode prefix, a style, a brand or words of the name. One query.

    Case-insensitive; a search of at most a few thousand rows on a store's catalogue needs no
    search index. Results are grouped by product, at most `limit` products.
    """
    query = query.strip()
    if not query:
        return []
    code_match = Q(sku__istartswith=query) | Q(barcode__startswith=query)
    variants = (
        Variant.objects.filter(is_active=True, product__is_active=True)
        .filter(
            code_match
            | Q(product__style__istartswith=query)
            | Q(product__brand__istartswith=query)
            | Q(product__name__icontains=query)
        )
        .select_related("product")
        .order_by("product__name", "product_id", "colour", "sku")[: limit * 12]
    )
    hits: dict[int, dict[str, Any]] = {}
    lowered = query.casefold()
    for variant in variants:
        hit = hits.get(variant.product_id)
        if hit is None:
            if len(hits) >= limit:
                continue
            hit = hits[variant.product_id] = {"product": variant.product, "colours": [], "sizes": [], "variant": None}
        if variant.colour not in hit["colours"]:
            hit["colours"].append(variant.colour)
        if variant.size not in hit["sizes"]:
            hit["sizes"].append(variant.size)
        if hit["variant"] is None and (
            variant.sku.casefold().startswith(lowered) or (variant.barcode or "").startswith(query)
        ):
            hit["variant"] = variant
    return [
        SearchHit(
            product=hit["product"],
            colours=hit["colours"],
            sizes=sorted(hit["sizes"], key=size_sort_key),
            variant=hit["variant"],
        )
        for hit in hits.values()
    ]


def low_stock_list(*, location_id: int, threshold: int) -> QuerySet[StockLevel]:
    """Active variants at a location with available <= threshold, or flagged for a count; worst first."""
    return (
        StockLevel.objects.filter(location_id=location_id, variant__is_active=True)
        .filter(Q(available__lte=threshold) | Q(needs_count=True))
        .select_related("variant__product")
        .order_by("available", "variant__sku")
    )


def count_expected(*, location_id: int, variant_ids: Iterable[int]) -> tuple[dict[int, Variant], dict[int, int]]:
    """For a stocktake in progress: the variants (with products) and what is on hand here. Two queries."""
    ids = sorted(set(variant_ids))
    if not ids:
        return {}, {}
    variants = Variant.objects.select_related("product").in_bulk(ids)
    on_hand = dict(
        StockLevel.objects.filter(location_id=location_id, variant_id__in=ids).values_list("variant_id", "on_hand")
    )
    return variants, on_hand
