"""The nightly run's SQL: every aggregation over sales lines, orders and the stock ledger happens here,
in the database, as one statement per question. Python only sees one row per customer, per
(store, category, size), per (store, product) or per (store, category, week).

The statements run on PostgreSQL and on SQLite (the embedded default of `make run`): they use
common table expressions, window functions and CASE, and measure time in whole UTC days since
1970-01-01 ("epoch days", `epoch_day()`), so no date arithmetic differs between the two.

Sources (read-only): orders.Order / OrderLine (sales, net of cancellations, refunds and returns),
customers.Customer (merges are followed to the surviving record: `COALESCE(merged_into_id, id)`),
inventory.Variant / Product / StockLevel / StockMovement / Location, and the lost-demand model when
orders provides one (see `lost_demand_table`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models import Model

from insights import conf


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def epoch_day(column: str) -> str:
    """SQL for the UTC day number (days since 1970-01-01) of a timestamp column."""
    if is_postgres():
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column}) / 86400) AS INTEGER)"
    return f"CAST(julianday({column}) - 2440587.5 AS INTEGER)"


def table(label: str) -> str:
    """The quoted table of a model ("orders.Order")."""
    model: type[Model] = apps.get_model(label)
    return connection.ops.quote_name(model._meta.db_table)


@dataclass(frozen=True)
class LostDemandSource:
    table: str
    location: str
    variant: str
    quantity: str
    occurred_at: str


def lost_demand_table() -> LostDemandSource | None:
    """The lost-demand model's table and columns, or None while orders does not record lost demand."""
    label = conf.get("LOST_DEMAND_MODEL")
    try:
        model: type[Model] = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    columns: dict[str, str] = {}
    for name in ("location", "variant", "quantity", "occurred_at"):
        try:
            column = getattr(model._meta.get_field(name), "column", None)
        except FieldDoesNotExist:  # not the documented shape, so not a source
            return None
        if not column:
            return None
        columns[name] = connection.ops.quote_name(column)
    return LostDemandSource(table=connection.ops.quote_name(model._meta.db_table), **columns)


# --- customers -----------------------------------------------------------------------------------


def customer_summary_sql() -> str:
    """One row per active customer who bought before the cutoff (params: cutoff, cancelled, active).

    A purchase occasion is a customer's net spend on one UTC day (orders of the same day are one
    occasion, as in the BG/NBD papers); days whose net spend is not positive (fully refunded)
    are not occasions. `first_spend` is the first occasion's spend, so the mean repeat spend is
    (total - first) / frequency. `r_rank` / `m_rank` are PERCENT_RANK over all rows (ties equal).
    """
    day = epoch_day("o.placed_at")
    return f"""
WITH sale AS (
    SELECT COALESCE(c.merged_into_id, c.id) AS customer_id, {day} AS day,
           o.total - o.refunded_total AS net, o.location_id, o.placed_at, o.id AS order_id
    FROM {table("orders.Order")} o
    JOIN {table("customers.Customer")} c ON c.id = o.customer_id
    WHERE o.placed_at < %(cutoff)s AND o.status <> %(cancelled)s
), occasion AS (
    SELECT customer_id, day, SUM(net) AS spend
    FROM sale GROUP BY customer_id, day HAVING SUM(net) > 0
), ranked AS (
    SELECT customer_id, day, spend,
           FIRST_VALUE(spend) OVER (PARTITION BY customer_id ORDER BY day) AS first_spend
    FROM occasion
), summary AS (
    SELECT customer_id, COUNT(*) - 1 AS frequency, MIN(day) AS first_day, MAX(day) AS last_day,
           SUM(spend) AS total_spend, MAX(first_spend) AS first_spend
    FROM ranked GROUP BY customer_id
), last_sale AS (
    SELECT customer_id, location_id,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY placed_at DESC, order_id DESC) AS position
    FROM sale WHERE net > 0
)
SELECT s.customer_id, s.frequency, s.first_day, s.last_day, s.total_spend, s.first_spend, l.location_id,
       PERCENT_RANK() OVER (ORDER BY s.last_day) AS r_rank,
       PERCENT_RANK() OVER (ORDER BY s.total_spend) AS m_rank
FROM summary s
JOIN {table("customers.Customer")} t ON t.id = s.customer_id AND t.status = %(active)s
LEFT JOIN last_sale l ON l.customer_id = s.customer_id AND l.position = 1
ORDER BY s.customer_id
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


# --- merchandise ---------------------------------------------------------------------------------


def _net_units() -> str:
    return "(l.quantity - l.cancelled_quantity - l.returned_quantity)"


def size_demand_insert_sql() -> str:
    """Fill SizeDemand for a run (params: run, since, cutoff, cancelled, store).

    Demand is counted where the customer asked (the selling location; online orders: the
    location that fulfilled them), net units per (location, category, size), plus lost demand.
    """
    lost = lost_demand_table()
    lost_part = ""
    if lost is not None:
        lost_part = f"""
    UNION ALL
    SELECT d.{lost.location} AS location_id, p.category, v.size, 0 AS sold, SUM(d.{lost.quantity}) AS lost
    FROM {lost.table} d
    JOIN {table("inventory.Variant")} v ON v.id = d.{lost.variant}
    JOIN {table("inventory.Product")} p ON p.id = v.product_id
    WHERE d.{lost.occurred_at} >= %(since)s AND d.{lost.occurred_at} < %(cutoff)s
    GROUP BY d.{lost.location}, p.category, v.size"""  # noqa: S608
    return f"""
WITH demand AS (
    SELECT COALESCE(o.location_id, l.source_location_id) AS location_id, p.category, v.size,
           SUM({_net_units()}) AS sold, 0 AS lost
    FROM {table("orders.OrderLine")} l
    JOIN {table("orders.Order")} o ON o.id = l.order_id
    JOIN {table("inventory.Variant")} v ON v.id = l.variant_id
    JOIN {table("inventory.Product")} p ON p.id = v.product_id
    WHERE o.placed_at >= %(since)s AND o.placed_at < %(cutoff)s AND o.status <> %(cancelled)s
    GROUP BY COALESCE(o.location_id, l.source_location_id), p.category, v.size{lost_part}
)
INSERT INTO {table("insights.SizeDemand")} (run_id, location_id, category, size, sold_units, lost_units)
SELECT %(run)s, d.location_id, d.category, d.size, SUM(d.sold), SUM(d.lost)
FROM demand d
JOIN {table("inventory.Location")} loc ON loc.id = d.location_id
GROUP BY d.location_id, d.category, d.size
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


def stock_performance_insert_sql() -> str:
    """Fill StockPerformance for a run: one row per (store, product) with stock or sales.

    Params: run, since (sell-through window start), recent_day (first day of the cover window),
    cutoff, cutoff_day, cancelled, store, cover_weeks, late_share, min_weeks_on_sale,
    max_sell_through, min_cover.

    - units sold: net units that left the store's stock (the line's source location) since `since`;
    - sell-through = sold / (sold + on hand);
    - weeks of cover = on hand / (units sold in the last `cover_weeks` weeks / cover_weeks),
      empty when nothing sold recently;
    - weeks on sale: since the first stock arrived at the store (ledger: first positive on-hand movement);
    - late in the season: the product's Season has `late_share` of its dates gone, or, without a
      dated season, the product has been on sale `min_weeks_on_sale` weeks;
    - markdown candidate: late in the season, stock on hand, sell-through below `max_sell_through`
      and cover above `min_cover` weeks (or no recent sales at all).
    """
    day = epoch_day("o.placed_at")
    first_day = epoch_day("MIN(m.created_at)")
    return f"""
WITH sold AS (
    SELECT l.source_location_id AS location_id, v.product_id,
           SUM({_net_units()}) AS units,
           SUM(CASE WHEN {day} >= %(recent_day)s THEN {_net_units()} ELSE 0 END) AS recent
    FROM {table("orders.OrderLine")} l
    JOIN {table("orders.Order")} o ON o.id = l.order_id
    JOIN {table("inventory.Variant")} v ON v.id = l.variant_id
    WHERE o.placed_at >= %(since)s AND o.placed_at < %(cutoff)s AND o.status <> %(cancelled)s
    GROUP BY l.source_location_id, v.product_id
), stock AS (
    SELECT s.location_id, v.product_id, SUM(s.on_hand) AS on_hand
    FROM {table("inventory.StockLevel")} s
    JOIN {table("inventory.Variant")} v ON v.id = s.variant_id
    GROUP BY s.location_id, v.product_id
), arrived AS (
    SELECT m.location_id, v.product_id, {first_day} AS first_day
    FROM {table("inventory.StockMovement")} m
    JOIN {table("inventory.Variant")} v ON v.id = m.variant_id
    WHERE m.state = 'on_hand' AND m.quantity > 0 AND m.created_at < %(cutoff)s
    GROUP BY m.location_id, v.product_id
), cell AS (
    SELECT location_id, product_id FROM stock UNION SELECT location_id, product_id FROM sold
), measured AS (
    SELECT c.location_id, c.product_id,
           COALESCE(st.on_hand, 0) AS on_hand, COALESCE(so.units, 0) AS units, COALESCE(so.recent, 0) AS recent,
           CASE WHEN a.first_day IS NULL THEN 0 ELSE (%(cutoff_day)s - a.first_day) / 7 END AS weeks_on_sale,
           CASE WHEN se.id IS NULL THEN NULL
                WHEN %(cutoff_day)s >= {epoch_day("se.ends_on")} THEN 1.0
                WHEN %(cutoff_day)s <= {epoch_day("se.starts_on")} THEN 0.0
                ELSE (%(cutoff_day)s - {epoch_day("se.starts_on")}) * 1.0
                     / ({epoch_day("se.ends_on")} - {epoch_day("se.starts_on")}) END AS season_elapsed
    FROM cell c
    JOIN {table("inventory.Location")} loc ON loc.id = c.location_id AND loc.kind = %(store)s
    JOIN {table("inventory.Product")} p ON p.id = c.product_id
    LEFT JOIN stock st ON st.location_id = c.location_id AND st.product_id = c.product_id
    LEFT JOIN sold so ON so.location_id = c.location_id AND so.product_id = c.product_id
    LEFT JOIN arrived a ON a.location_id = c.location_id AND a.product_id = c.product_id
    LEFT JOIN {table("insights.Season")} se ON se.code = p.season AND p.season <> ''
), rated AS (
    SELECT m.*,
           CASE WHEN m.units + CASE WHEN m.on_hand > 0 THEN m.on_hand ELSE 0 END > 0
                THEN m.units * 1.0 / (m.units + CASE WHEN m.on_hand > 0 THEN m.on_hand ELSE 0 END) END AS sell_through,
           CASE WHEN m.recent > 0 THEN m.on_hand * %(cover_weeks)s * 1.0 / m.recent END AS weeks_of_cover
    FROM measured m
    WHERE m.on_hand <> 0 OR m.units <> 0
)
INSERT INTO {table("insights.StockPerformance")}
    (run_id, location_id, product_id, on_hand, units_sold, units_sold_recent, sell_through, weeks_of_cover,
     weeks_on_sale, season_elapsed, markdown_candidate)
SELECT %(run)s, r.location_id, r.product_id, r.on_hand, r.units, r.recent, r.sell_through, r.weeks_of_cover,
       r.weeks_on_sale, r.season_elapsed,
       CASE WHEN r.on_hand > 0
             AND (CASE WHEN r.season_elapsed IS NULL THEN r.weeks_on_sale >= %(min_weeks_on_sale)s
                       ELSE r.season_elapsed >= %(late_share)s END)
             AND COALESCE(r.sell_through, 0) < %(max_sell_through)s
             AND (r.weeks_of_cover IS NULL OR r.weeks_of_cover > %(min_cover)s)
            THEN TRUE ELSE FALSE END
FROM rated r
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


# --- anomalies -----------------------------------------------------------------------------------


def weekly_category_units_sql() -> str:
    """Net units per (selling location, category, week back) for the 9 complete weeks before the
    cutoff: week 0 is the last 7 days (params: since, cutoff, cutoff_day, cancelled)."""
    day = epoch_day("o.placed_at")
    return f"""
SELECT COALESCE(o.location_id, l.source_location_id) AS location_id, p.category,
       (%(cutoff_day)s - 1 - {day}) / 7 AS weeks_back, SUM({_net_units()}) AS units
FROM {table("orders.OrderLine")} l
JOIN {table("orders.Order")} o ON o.id = l.order_id
JOIN {table("inventory.Variant")} v ON v.id = l.variant_id
JOIN {table("inventory.Product")} p ON p.id = v.product_id
WHERE o.placed_at >= %(since)s AND o.placed_at < %(cutoff)s AND o.status <> %(cancelled)s
GROUP BY COALESCE(o.location_id, l.source_location_id), p.category, (%(cutoff_day)s - 1 - {day}) / 7
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


def weekly_shrinkage_sql() -> str:
    """Units (and their retail value) lost per (location, week back) for the 13 complete weeks
    before the cutoff, from stock counts (net variance of each week's counts, when negative) and
    adjustments coded 'shrinkage' (params: since, cutoff, cutoff_day, count, adjustment)."""
    day = epoch_day("m.created_at")
    return f"""
SELECT m.location_id, (%(cutoff_day)s - 1 - {day}) / 7 AS weeks_back,
       -SUM(m.quantity) AS units, -SUM(m.quantity * v.price) AS value
FROM {table("inventory.StockMovement")} m
JOIN {table("inventory.Variant")} v ON v.id = m.variant_id
WHERE m.created_at >= %(since)s AND m.created_at < %(cutoff)s AND m.state = 'on_hand'
  AND (m.reason = %(count)s OR (m.reason = %(adjustment)s AND m.reason_code = 'shrinkage'))
GROUP BY m.location_id, (%(cutoff_day)s - 1 - {day}) / 7
"""  # noqa: S608 - identifiers come from model metadata, values are parameters
