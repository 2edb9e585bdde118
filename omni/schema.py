"""The API's error shape in the OpenAPI schema, and the error answers every operation can give.

Every error is `{"code", "message", "extra"}` (omni.errors). Views declare the errors their own
rules produce (`error_responses(403, 409)`); `add_common_errors` adds what any request can meet
before a view decides anything: a malformed body or parameter (400), missing or bad credentials
(401), a path naming nothing (404) and sign-in throttling (429, the token endpoint).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers


@extend_schema_serializer(component_name="Error")
class ErrorOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. insufficient_stock.")
    message = serializers.CharField(help_text="For people; never repeats personal data.")
    extra = serializers.DictField(help_text="Details, e.g. {fields: {email: message}} or what is available where.")


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {status: OpenApiResponse(ErrorOutput, description="Error") for status in statuses}


_COMMON = {
    "400": "The body or a parameter is malformed or invalid (code `invalid`, `parse_error`, ...).",
    "401": "No credentials, or a token or session that is not valid.",
    "404": "The path names nothing (code `not_found`), or nothing you may see.",
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def add_common_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            wanted = ["400"]
            if operation.get("security"):  # absent where a view takes no credentials (auth=[])
                wanted.append("401")
            if "{" in path:
                wanted.append("404")
            if path.endswith("/auth/token/"):
                wanted.append("429")
            for status in wanted:
                description = _COMMON.get(status, "Too many failed sign-ins: try again later (code `login_locked`).")
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}
                )
    return result
