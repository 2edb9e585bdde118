"""Request ids in every log line: set by RequestIdMiddleware, read by RequestIdFilter."""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id == "-":
            # Django logs 4xx/5xx responses ("Not Found: /x") after the middleware chain returned,
            # when the context variable is already reset; those records carry the request itself.
            request = getattr(record, "request", None)
            request_id = getattr(request, "request_id", None) or "-"
        record.request_id = request_id
        return True
