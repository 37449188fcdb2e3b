"""Logging: every record carries the request id and the Stripe event id, and is masked.

``RequestContextFilter`` stamps ``request_id`` and ``stripe_event_id`` (from
audit.context) on each record and masks card numbers and credentials in the final
message (audit.masking), so a careless ``logger.info("%s", payload)`` still cannot put a
card number or a Stripe key in the logs. Webhook bodies are never logged by the code.

``JsonFormatter`` writes one JSON object per line (production's default, LOG_FORMAT).
It is twenty lines of stdlib: python-json-logger would add a dependency for the same.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from audit.context import current_request_id, current_stripe_event_id
from audit.masking import mask_text


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        if not getattr(record, "stripe_event_id", None):
            record.stripe_event_id = current_stripe_event_id() or "-"
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = str(record.msg)
        record.msg = mask_text(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "stripe_event_id": getattr(record, "stripe_event_id", "-"),
        }
        if record.exc_info:
            line["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)
