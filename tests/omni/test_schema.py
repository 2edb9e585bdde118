"""The OpenAPI schema documents the errors every operation can give, in the one error shape."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _error_statuses(operation):
    return {
        status
        for status, response in operation["responses"].items()
        if response.get("content", {}).get("application/json", {}).get("schema")
        == {"$ref": "#/components/schemas/Error"}
    }


def test_every_operation_documents_malformed_input_and_credentials(schema):
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/v1/")
    ]

    assert len(operations) > 30
    for path, method, operation in operations:
        errors = _error_statuses(operation)
        assert "400" in errors, (method, path)
        assert ("401" in errors) == (path != "/api/v1/auth/token/"), (method, path)
        assert ("404" in errors) or "{" not in path, (method, path)


def test_the_token_endpoint_documents_its_lockout(schema):
    responses = schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]

    assert {"200", "400", "429"} <= set(responses)
    assert "login_locked" in responses["429"]["description"]


def test_one_error_component_serves_every_app(schema):
    components = schema["components"]["schemas"]

    assert set(components["Error"]["properties"]) == {"code", "message", "extra"}
    assert not [name for name in components if name.endswith("Error") and name != "Error"]
