"""Plain-HTTP calls to downstream vendors, with their answers translated into the
outbox's error classes (delivery/errors.py).

Every call first takes a slot from the vendor's shared rate limiter (and from an extra
bucket such as ``hubspot_search`` when the endpoint has its own limit), so the vendor
never sees more than its documented rate from all workers together. Any 429 holds back
every worker: for ``Retry-After`` when the vendor sends it (Zendesk does), else for the
window of the policy the body names (HubSpot's 429s carry no ``Retry-After`` but a
``policyName``: ``SECONDLY`` is a 1 s window, ``TEN_SECONDLY_ROLLING`` 10 s), else for
``SYNC_RATE_HOLD_SECONDS``. A hold shorter than a second would let the next request hit
the same exhausted window. The standard library's ``urllib`` is enough for
JSON over HTTPS; it keeps the vendor clients free of another dependency.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from delivery import ratelimit
from delivery.errors import ConfigurationError, PermanentError, RetryableError

logger = logging.getLogger(__name__)


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - timezone.now()).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


# HubSpot's rate-limit policies (429 body ``policyName``) and the window each counts in.
POLICY_WINDOW_SECONDS = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}


def hold_seconds(body: Any, headers: dict[str, str]) -> float:
    """How long a 429 holds the vendor back: Retry-After, else the policy's window, else
    ``SYNC_RATE_HOLD_SECONDS``; never under one second."""
    wait = retry_after_seconds(_header(headers, "Retry-After"))
    if wait is None and isinstance(body, dict):
        wait = POLICY_WINDOW_SECONDS.get(str(body.get("policyName") or "").upper())
    if wait is None:
        wait = float(settings.SYNC_RATE_HOLD_SECONDS)
    return max(wait, 1.0)


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:500]


def _summary(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "description", "details"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300] if body else ""


def _host(url: str) -> str:
    """``host[:port]`` of ``url``: never its path, query or user info."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "(no host)"
    return f"{host}:{port}" if port else host


def request(
    vendor: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    payload: Any = None,
    ok_statuses: tuple[int, ...] = (),
    bucket: str = "",
) -> Response:
    """One HTTP call. 2xx (and ``ok_statuses``) return a Response; everything else raises
    RetryableError, PermanentError or ConfigurationError. Rate-limited by vendor, and by
    ``bucket`` too when the endpoint has a limit of its own (``hubspot_search``)."""
    try:
        if bucket:
            ratelimit.acquire(bucket)
        ratelimit.acquire(vendor)
    except ratelimit.RateLimited as exc:
        raise RetryableError(str(exc), retry_after=exc.wait) from exc
    # bytes are sent as they are (a signed webhook body must be the bytes signed)
    if isinstance(payload, bytes):
        data: bytes | None = payload
    else:
        data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Accept": "application/json", "Content-Type": "application/json", **headers},
    )
    # Only the host: a webhook URL (Slack's /services/T.../B.../<secret>) carries its
    # credential in the path, and these messages reach last_error, logs, alerts and mail.
    where = f"{vendor} {method} {_host(url)}"
    try:
        with urllib.request.urlopen(req, timeout=settings.SYNC_HTTP_TIMEOUT_SECONDS) as resp:  # noqa: S310 - URL from settings
            return Response(resp.status, _decode(resp.read()), dict(resp.headers.items()))
    except urllib.error.HTTPError as exc:
        status = exc.code
        body = _decode(exc.read())
        resp_headers = dict(exc.headers.items()) if exc.headers else {}
        if status in ok_statuses:
            return Response(status, body, resp_headers)
        detail = f"{where} answered {status}: {_summary(body)}"
        if status == 429:
            wait = hold_seconds(body, resp_headers)
            ratelimit.block_for(vendor, wait)
            raise RetryableError(
                detail,
                retry_after=wait,
                user_message=f"{vendor} is rate limiting us; retrying later",
                status=status,
                body=body,
            ) from exc
        if status >= 500 or status == 408:
            raise RetryableError(
                detail,
                retry_after=retry_after_seconds(_header(resp_headers, "Retry-After")),
                status=status,
                body=body,
            ) from exc
        if status in (401, 403):
            raise ConfigurationError(
                detail,
                user_message=f"{vendor} refused our credentials ({status}): "
                "check the token in the settings",
                status=status,
                body=body,
            ) from exc
        raise PermanentError(
            detail,
            user_message=f"{vendor} refused the request: {_summary(body)}",
            status=status,
            body=body,
        ) from exc
    except TimeoutError as exc:
        raise RetryableError(f"{where} timed out") from exc
    except urllib.error.URLError as exc:
        raise RetryableError(f"{where} unreachable: {exc.reason}") from exc
    except (ConnectionError, OSError) as exc:
        raise RetryableError(f"{where} failed: {exc.__class__.__name__}") from exc
