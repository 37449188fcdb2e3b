"""Logging filter that stamps every record with the current request id."""

from __future__ import annotations

import logging

from audit.context import current_request_id


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        return True
