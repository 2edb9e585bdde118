"""Insight screens in the top bar and on the home page (see omni.navigation)."""

from omni.navigation import NavLink
from omni.roles import MANAGERS, STORE_STAFF

LINKS = [
    NavLink(
        "insights:customers", "Insights", roles=MANAGERS, tile="Customer segments, predicted value, exports", order=60
    ),
    NavLink(
        "insights:size-curves",
        "Size curves",
        roles=MANAGERS,
        tile="Demand per size and the next buy",
        order=61,
        in_top_bar=False,
    ),
    NavLink(
        "insights:sell-through",
        "Sell-through",
        roles=MANAGERS,
        tile="Cover, slow sellers, markdown candidates",
        order=62,
        in_top_bar=False,
    ),
    NavLink(
        "insights:anomalies",
        "Anomalies",
        roles=MANAGERS,
        tile="Unusual changes flagged overnight",
        order=63,
        in_top_bar=False,
    ),
    NavLink(
        "insights:survey",
        "Survey",
        roles=STORE_STAFF,
        tile="After-purchase satisfaction survey",
        order=64,
        in_top_bar=False,
    ),
]
