"""Sign webhook bodies exactly as Stripe does: t=<ts>,v1=HMAC-SHA256(secret, "<ts>.<body>").

No pytest here: the demo command signs the events it builds with it too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any


def signature_header(
    body: bytes | str, secrets: str | list[str], timestamp: int | None = None
) -> str:
    """A Stripe-Signature header; several secrets give several v1 entries (rotation)."""
    if isinstance(body, str):
        body = body.encode()
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + body
    if isinstance(secrets, str):
        secrets = [secrets]
    parts = [f"t={t}"]
    for secret in secrets:
        parts.append("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())
    return ",".join(parts)


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def signed(
    event: dict[str, Any], secrets: str | list[str], timestamp: int | None = None
) -> tuple[bytes, str]:
    """The exact body and ``Stripe-Signature`` header Stripe would send for ``event``."""
    body = encode(event)
    return body, signature_header(body, secrets, timestamp)
