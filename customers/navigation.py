"""The customers screens in the top bar and on the home page (see omni.navigation)."""

from omni.navigation import NavLink
from omni.roles import MANAGERS, STORE_STAFF

LINKS = [
    NavLink(
        "customers:search", "Customers", roles=STORE_STAFF, tile="Find or add a customer, see their history", order=30
    ),
    NavLink(
        "customers:reviews",
        "Possible duplicates",
        roles=MANAGERS,
        tile="Review customers that may be one person; merge them",
        order=35,
        in_top_bar=False,
    ),
]
