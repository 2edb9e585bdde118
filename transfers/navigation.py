"""The transfers screens in the top bar and on the home page (see omni.navigation)."""

from omni.navigation import NavLink
from omni.roles import MANAGERS, STOCK_STAFF

LINKS = [
    NavLink(
        "transfers:index",
        "Transfers",
        roles=STOCK_STAFF,
        tile="Pick and dispatch outgoing stock, receive incoming by scanning",
        order=50,
    ),
    NavLink(
        "transfers:exceptions",
        "Transfer approvals",
        roles=MANAGERS,
        tile="Approve planned transfers outside policy; review receipt differences",
        order=55,
        in_top_bar=False,
    ),
    NavLink(
        "transfers:dashboard",
        "Transfers dashboard",
        roles=MANAGERS,
        tile="In flight, lead times, automatic share, stock-outs avoided, value moved",
        order=56,
        in_top_bar=False,
    ),
]
