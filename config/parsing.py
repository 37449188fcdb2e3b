"""Parsing ids and page numbers that come from the request.

``str.isdigit()`` is no guard before ``int()``: it accepts "²" and other Unicode digits
``int()`` refuses, and ``int()`` refuses strings over 4,300 digits. Anything a browser
can send goes through here instead, so bad input becomes "unknown", never a 500.
"""

from __future__ import annotations

import re

# 1-18 ASCII digits: always an int, and always inside PostgreSQL's bigint.
_ID = re.compile(r"[0-9]{1,18}")


def parse_id(raw: str | None) -> int | None:
    """A positive id from request input, or None when ``raw`` is not one."""
    if raw is None or not _ID.fullmatch(raw.strip()):
        return None
    value = int(raw.strip())
    return value or None
