"""Plain-HTTP calls to downstream vendors, with their answers translated into the
outbox's error classes (delivery/errors.py).

Every call first takes a slot from the vendor's shared rate limiter, so the vendor never
sees more than its documented rate from all workers together, and a 429 with
``Retry-After`` holds back every worker. The standard library's ``urllib`` is enough for
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
) -> Response:
    """One HTTP call. 2xx (and ``ok_statuses``) return a Response; everything else raises
    RetryableError, PermanentError or ConfigurationError. Rate-limited by vendor."""
    try:
        ratelimit.acquire(vendor)
    except ratelimit.RateLimited as exc:
        raise RetryableError(str(exc), retry_after=exc.wait) from exc
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
            wait = retry_after_seconds(resp_headers.get("Retry-After"))
            if wait:
                ratelimit.block_for(vendor, wait)
            raise RetryableError(
                detail,
                retry_after=wait,
                user_message=f"{vendor} is rate limiting us; retrying later",
            ) from exc
        if status >= 500 or status == 408:
            raise RetryableError(
                detail, retry_after=retry_after_seconds(resp_headers.get("Retry-After"))
            ) from exc
        if status in (401, 403):
            raise ConfigurationError(
                detail,
                user_message=f"{vendor} refused our credentials ({status}): "
                "check the token in the settings",
            ) from exc
        raise PermanentError(
            detail, user_message=f"{vendor} refused the request: {_summary(body)}"
        ) from exc
    except TimeoutError as exc:
        raise RetryableError(f"{where} timed out") from exc
    except urllib.error.URLError as exc:
        raise RetryableError(f"{where} unreachable: {exc.reason}") from exc
    except (ConnectionError, OSError) as exc:
        raise RetryableError(f"{where} failed: {exc.__class__.__name__}") from exc
