"""A local fake of the online store's Admin GraphQL API, speaking the protocol Omni uses.

It keeps inventory levels per (item, location), honours `changeFromQuantity` (answering
CHANGE_FROM_QUANTITY_STALE when it does not match), replays the first answer for a repeated
idempotency key, and can be told to throttle: `fail_next("429")`, `fail_next("THROTTLED")`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _number(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1])


class FakeOnlineStore:
    def __init__(self) -> None:
        self.levels: dict[tuple[int, int], int] = {}
        self.requests: list[dict[str, Any]] = []
        self.mutations: list[dict[str, Any]] = []
        self.answers_by_key: dict[str, dict[str, Any]] = {}
        self.failures: deque[str] = deque()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/admin/api/2026-04/graphql.json"

    def start(self) -> FakeOnlineStore:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, kind: str) -> None:
        self.failures.append(kind)

    # --- protocol ---------------------------------------------------------------------------------

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
            if self.failures:
                kind = self.failures.popleft()
                if kind == "429":
                    return 429, {"Retry-After": "1.5"}, {"errors": "Too many requests"}
                if kind == "THROTTLED":
                    return (
                        200,
                        {},
                        {
                            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                            "extensions": {
                                "cost": {
                                    "requestedQueryCost": 10,
                                    "throttleStatus": {
                                        "maximumAvailable": 1000,
                                        "currentlyAvailable": 0,
                                        "restoreRate": 50,
                                    },
                                }
                            },
                        },
                    )
                if kind == "500":
                    return 500, {}, {"errors": "Internal error"}
            query = body.get("query", "")
            variables = body.get("variables") or {}
            if "inventorySetQuantities" in query:
                return 200, {}, self._set_quantities(variables)
            if "inventoryLevels" in query:
                return 200, {}, self._levels(variables)
            return 200, {}, {"errors": [{"message": "Unknown operation"}]}

    def _set_quantities(self, variables: dict[str, Any]) -> dict[str, Any]:
        key = variables.get("idempotencyKey")
        if not key:
            return {"errors": [{"message": "@idempotent(key:) is required"}]}
        if key in self.answers_by_key:
            return self.answers_by_key[key]
        quantities = variables["input"]["quantities"]
        stale = []
        for index, q in enumerate(quantities):
            current = self.levels.get((_number(q["inventoryItemId"]), _number(q["locationId"])), 0)
            if q.get("changeFromQuantity") is not None and q["changeFromQuantity"] != current:
                stale.append(
                    {
                        "code": "CHANGE_FROM_QUANTITY_STALE",
                        "field": ["input", "quantities", str(index)],
                        "message": f"The compared quantity is stale: current {current}",
                    }
                )
        if stale:
            answer = {"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": stale}}}
        else:
            changes = []
            for q in quantities:
                pair = (_number(q["inventoryItemId"]), _number(q["locationId"]))
                delta = q["quantity"] - self.levels.get(pair, 0)
                self.levels[pair] = q["quantity"]
                changes.append({"name": "available", "delta": delta, "quantityAfterChange": q["quantity"]})
            self.mutations.append(variables)
            answer = {
                "data": {
                    "inventorySetQuantities": {
                        "inventoryAdjustmentGroup": {
                            "createdAt": "2026-11-23T10:00:00Z",
                            "reason": "correction",
                            "referenceDocumentUri": variables["input"].get("referenceDocumentUri"),
                            "changes": changes,
                        },
                        "userErrors": [],
                    }
                }
            }
        self.answers_by_key[key] = answer
        return answer

    def _levels(self, variables: dict[str, Any]) -> dict[str, Any]:
        location = _number(variables["locationId"])
        nodes = [
            {
                "item": {"id": f"gid://shopify/InventoryItem/{item}"},
                "quantities": [{"name": "available", "quantity": qty}],
            }
            for (item, loc), qty in sorted(self.levels.items())
            if loc == location
        ]
        return {
            "data": {
                "location": {"inventoryLevels": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}}
            }
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.headers.get("X-Shopify-Access-Token") != "test-token":
                    self._send(401, {}, {"errors": "Invalid API key or access token"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, payload = fake.answer(body)
                self._send(status, headers, payload)

            def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
