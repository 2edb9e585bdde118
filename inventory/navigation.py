"""The inventory screens in the top bar and on the home page (see omni.navigation)."""

from omni.navigation import NavLink
from omni.roles import MANAGERS, STOCK_STAFF

LINKS = [
    NavLink(
        "inventory:search",
        "Stock",
        roles=STOCK_STAFF,
        tile="Find a product by scan, SKU or name; stock in every store",
        order=20,
    ),
    NavLink(
        "inventory:low-stock",
        "Low stock",
        roles=STOCK_STAFF,
        tile="What is running out here, and what needs a count",
        order=22,
    ),
    NavLink(
        "inventory:count",
        "Stocktake",
        roles=MANAGERS,
        tile="Count stock by scanning; book the differences",
        order=24,
        in_top_bar=False,
    ),
    NavLink(
        "inventory:adjust",
        "Adjust stock",
        roles=MANAGERS,
        tile="Correct on hand with a reason",
        order=26,
        in_top_bar=False,
    ),
]
