"""The API's request parsers (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"])."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from omni.http import NUL_MESSAGE, contains_nul


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a body with a NUL character in any text (400, not a DataError
    500 from PostgreSQL later: an order's contact name with \\u0000 was one)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if contains_nul(data):
            raise ParseError(NUL_MESSAGE)
        return data
