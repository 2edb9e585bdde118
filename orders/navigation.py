"""Orders' screens in the top bar and on the home page (omni.navigation)."""

from omni.navigation import NavLink
from omni.roles import STOCK_STAFF, STORE_STAFF

LINKS = [
    NavLink("orders:sell", "Sell", roles=STORE_STAFF, tile="Ring up a sale: take now, ship or collect", order=10),
    NavLink("orders:list", "Orders", roles=STOCK_STAFF, tile="Every order, its timeline, cancellations", order=20),
    NavLink("orders:fulfil", "Fulfil", roles=STOCK_STAFF, tile="Pick, pack and ship; collect-in-store", order=25),
    NavLink(
        "orders:pickups",
        "Pickups",
        roles=STORE_STAFF,
        tile="Orders waiting to be collected here",
        order=26,
        in_top_bar=False,
    ),
    NavLink("orders:returns", "Returns", roles=STORE_STAFF, tile="Returns and exchanges for any order", order=27),
]
