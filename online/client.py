"""A small client for the online store's Admin GraphQL API: set inventory, read levels.

It speaks the protocol in shared/docs/online-store-contract.md §3: `inventorySetQuantities` with
`changeFromQuantity` and an `@idempotent` key, throttling as HTTP 429 + Retry-After or as a
GraphQL `THROTTLED` error with HTTP 200, and `CHANGE_FROM_QUANTITY_STALE` user errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

SET_QUANTITIES = """
mutation SetQuantities($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { createdAt reason referenceDocumentUri changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}
"""

LOCATION_LEVELS = """
query LocationLevels($locationId: ID!, $after: String) {
  location(id: $locationId) {
    inventoryLevels(first: 250, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { item { id } quantities(names: ["available"]) { name quantity } }
    }
  }
}
"""

RETRY_LATER_CODES = {"IDEMPOTENCY_CONCURRENT_REQUEST"}
NEW_KEY_CODES = {"IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"}
STALE_CODES = {"CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"}


def item_gid(item_id: int) -> str:
    return f"gid://shopify/InventoryItem/{item_id}"


def location_gid(location_id: int) -> str:
    return f"gid://shopify/Location/{location_id}"


def gid_number(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1].split("?", 1)[0])


@dataclass
class SetOutcome:
    """What happened to one push. `kind`: ok | throttled | stale | retry | new_key | rejected | transport."""

    kind: str
    retry_after: float | None = None
    message: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class QuantityChange:
    item_id: int
    quantity: int
    change_from: int | None  # None: explicit null, skip the compare


class OnlineStoreClient:
    def __init__(self, *, base_url: str, access_token: str, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self.headers = {"X-Shopify-Access-Token": access_token, "Content-Type": "application/json"}
        self.timeout = timeout

    def _post(self, query: str, variables: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            self.base_url, json={"query": query, "variables": variables}, headers=self.headers, timeout=self.timeout
        )

    def set_quantities(
        self, *, location_id: int, changes: list[QuantityChange], idempotency_key: str, reference: str
    ) -> SetOutcome:
        variables = {
            "idempotencyKey": idempotency_key,
            "input": {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": reference,
                "quantities": [
                    {
                        "inventoryItemId": item_gid(change.item_id),
                        "locationId": location_gid(location_id),
                        "quantity": change.quantity,
                        "changeFromQuantity": change.change_from,
                    }
                    for change in changes
                ],
            },
        }
        try:
            response = self._post(SET_QUANTITIES, variables)
        except httpx.HTTPError as exc:
            return SetOutcome("transport", message=f"{type(exc).__name__}: {exc}")
        if response.status_code == 429:
            return SetOutcome("throttled", retry_after=_retry_after(response), message="HTTP 429")
        if response.status_code >= 500:
            return SetOutcome("transport", message=f"HTTP {response.status_code}")
        if response.status_code != 200:
            return SetOutcome("rejected", message=f"HTTP {response.status_code}: {response.text[:500]}")
        body = response.json()
        throttled = _throttle_wait(body)
        if throttled is not None:
            return SetOutcome("throttled", retry_after=throttled, message="THROTTLED")
        if body.get("errors"):
            return SetOutcome("rejected", message=str(body["errors"])[:500])
        result = (body.get("data") or {}).get("inventorySetQuantities") or {}
        user_errors = result.get("userErrors") or []
        codes = {error.get("code") for error in user_errors}
        if not user_errors:
            return SetOutcome("ok")
        if codes & STALE_CODES:
            return SetOutcome("stale", message="changeFromQuantity is stale", errors=user_errors)
        if codes & RETRY_LATER_CODES:
            return SetOutcome("retry", retry_after=2.0, message="concurrent request", errors=user_errors)
        if codes & NEW_KEY_CODES:
            return SetOutcome("new_key", message=", ".join(sorted(c for c in codes if c)), errors=user_errors)
        return SetOutcome("rejected", message="; ".join(e.get("message", "") for e in user_errors), errors=user_errors)

    def location_levels(self, *, location_id: int) -> dict[int, int | None]:
        """Every item's available quantity at a location (paged, 250 at a time). Raises on failure."""
        levels: dict[int, int | None] = {}
        after = None
        while True:
            response = self._post(LOCATION_LEVELS, {"locationId": location_gid(location_id), "after": after})
            response.raise_for_status()
            body = response.json()
            if _throttle_wait(body) is not None or body.get("errors"):
                raise httpx.HTTPError(f"levels query failed: {body.get('errors')}")
            page = body["data"]["location"]["inventoryLevels"]
            for node in page["nodes"]:
                quantity = next((q["quantity"] for q in node["quantities"] if q["name"] == "available"), None)
                levels[gid_number(node["item"]["id"])] = quantity
            if not page["pageInfo"]["hasNextPage"]:
                return levels
            after = page["pageInfo"]["endCursor"]


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "2")))
    except ValueError:
        return 2.0


def _throttle_wait(body: dict[str, Any]) -> float | None:
    """Seconds to wait when the GraphQL cost bucket is empty (THROTTLED arrives with HTTP 200)."""
    for error in body.get("errors") or []:
        if (error.get("extensions") or {}).get("code") == "THROTTLED":
            cost = (body.get("extensions") or {}).get("cost") or {}
            status = cost.get("throttleStatus") or {}
            requested = float(cost.get("requestedQueryCost") or 10)
            available = float(status.get("currentlyAvailable") or 0)
            restore = float(status.get("restoreRate") or 50) or 50.0
            return max(0.5, (requested - available) / restore)
    return None
