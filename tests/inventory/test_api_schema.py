"""The inventory endpoints are documented in /api/schema/ with their request and response shapes."""

import pytest
import yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def ref(schema, reference):
    return schema["components"]["schemas"][reference["$ref"].rsplit("/", 1)[1]]


@pytest.mark.parametrize(
    ("path", "method", "operation_id"),
    [
        ("/api/v1/availability/", "get", "availability_get"),
        ("/api/v1/locations/", "get", "locations_list"),
        ("/api/v1/locations/{code}/stock/", "get", "location_stock_list"),
        ("/api/v1/stock/receipts/", "post", "stock_receipt_create"),
        ("/api/v1/stock/adjustments/", "post", "stock_adjustment_create"),
        ("/api/v1/stock/counts/", "post", "stock_count_create"),
        ("/api/v1/ledger/", "get", "ledger_list"),
        ("/api/v1/stock/reservations/", "post", "stock_reservation_create"),
        ("/api/v1/stock/reservations/{reservation_id}/release/", "post", "stock_reservation_release"),
    ],
)
def test_every_endpoint_is_documented(schema, path, method, operation_id):
    operation = schema["paths"][path][method]

    assert operation["operationId"] == operation_id
    assert "200" in operation["responses"] or "201" in operation["responses"]
    assert "403" in operation["responses"]


def test_availability_documents_its_parameters_and_response(schema):
    operation = schema["paths"]["/api/v1/availability/"]["get"]

    assert {p["name"] for p in operation["parameters"]} == {"sku", "barcode"}
    body = ref(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == {"variant", "locations", "totals"}
    location = ref(schema, body["properties"]["locations"]["items"])
    assert {"on_hand", "committed", "reserved", "safety_stock", "unavailable", "incoming", "available"} <= set(
        location["properties"]
    )
    assert "available_raw" in location["properties"]
    error = ref(schema, operation["responses"]["404"]["content"]["application/json"]["schema"])
    assert set(error["properties"]) == {"code", "message", "extra"}


def test_writes_document_their_request_body_and_idempotency_header(schema):
    for path in ("/api/v1/stock/receipts/", "/api/v1/stock/adjustments/", "/api/v1/stock/counts/"):
        operation = schema["paths"][path]["post"]
        assert [p["name"] for p in operation["parameters"]] == ["Idempotency-Key"]
        assert list(operation["requestBody"]["content"]) == ["application/json"]
        assert "409" in operation["responses"]

    receipt = ref(
        schema,
        schema["paths"]["/api/v1/stock/receipts/"]["post"]["requestBody"]["content"]["application/json"]["schema"],
    )
    assert set(receipt["required"]) == {"location", "quantity"}
    assert receipt["properties"]["quantity"]["minimum"] == 1
    adjustment = ref(
        schema,
        schema["paths"]["/api/v1/stock/adjustments/"]["post"]["requestBody"]["content"]["application/json"]["schema"],
    )
    assert "reason_code" in adjustment["required"]
    count = ref(
        schema, schema["paths"]["/api/v1/stock/counts/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    )
    line = ref(schema, count["properties"]["lines"]["items"])
    assert "counted" in line["required"]


def test_lists_document_their_filters_and_cursor(schema):
    stock = schema["paths"]["/api/v1/locations/{code}/stock/"]["get"]
    ledger = schema["paths"]["/api/v1/ledger/"]["get"]

    assert {"sku", "category", "brand", "below", "needs_count", "cursor", "page_size"} <= {
        p["name"] for p in stock["parameters"]
    }
    assert {"sku", "location", "reason", "since", "cursor"} <= {p["name"] for p in ledger["parameters"]}
    page = ref(schema, ledger["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"next", "previous", "results"}
