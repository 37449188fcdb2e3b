"""Account-state API tokens: create and revoke (owners, audited), authenticate, rate-limit.

A token looks like ``sbk_<8 chars>_<43 chars>``; only its SHA-256 is stored. The rate
limit is a fixed one-minute window per token in Redis (INCR + EXPIRE): simple, shared
by every web process, and exact enough for "N requests a minute". When Redis is
unreachable or does not answer in time the limit is not enforced (logged and counted on
the dashboard): refusing every caller because the limiter is down would take the help
widgets down with it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from audit import codes
from audit.services import audit_record
from config.queueing import redis_client
from console.models import API_SCOPES, ApiToken
from console.permissions import CHANGE_APITOKEN, can_manage_api_tokens

logger = logging.getLogger(__name__)
TOKEN_PREFIX = "sbk_"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(*, actor: Any, name: str, scopes: str = "state:read") -> tuple[ApiToken, str]:
    """Create a token; returns it and the clear token, which is never shown again."""
    if not can_manage_api_tokens(actor):
        raise PermissionDenied("Only owners create API tokens.")
    name = name.strip()
    if not name:
        raise ValidationError("Give the token a name that says who uses it.")
    unknown = set(scopes.split()) - set(API_SCOPES)
    if unknown:
        raise ValidationError(f"Unknown scope(s): {', '.join(sorted(unknown))}.")
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            name=name[:200], prefix=prefix, token_hash=_hash(raw), scopes=scopes, created_by=actor
        )
        audit_record(
            action=codes.API_TOKEN_CREATED,
            actor=actor,
            target=token,
            data={"name": token.name, "prefix": prefix, "scopes": scopes},
        )
    return token, raw


def api_token_revoke(*, actor: Any, token_pk: int, reason: str = "") -> bool:
    """Revoke a token at once (the next request with it gets 401). False if already revoked."""
    if not actor.has_perm(CHANGE_APITOKEN):
        raise PermissionDenied("Only owners revoke API tokens.")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_pk)
        if token.revoked_at is not None:
            return False
        token.revoked_at = timezone.now()
        token.revoked_by = actor
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            action=codes.API_TOKEN_REVOKED,
            actor=actor,
            target=token,
            data={
                "name": token.name,
                "prefix": token.prefix,
                "reason": reason,
                "uses": token.use_count,
            },
        )
    return True


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The token for a clear value, revoked ones included (the caller tells them apart);
    None when unknown. Counts the use."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.filter(token_hash=_hash(raw)).first()
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(
            use_count=F("use_count") + 1, last_used_at=timezone.now()
        )
    return token


# Seconds the limiter waits on Redis per attempt (one quick retry): a hanging Redis costs
# an API call well under a second before the request is let through.
RATE_LIMIT_REDIS_TIMEOUT = 0.25
FAIL_OPEN_TTL = 8 * 24 * 3600
_fail_open_lock = threading.Lock()
_fail_open_pending = 0  # requests let through unchecked, not yet counted in Redis


def _fail_open_key(hour: int) -> str:
    return f"console:api_ratelimit_failopen:h:{hour}"


def api_rate_limit(token: ApiToken, *, now: float | None = None) -> int | None:
    """None when the request may go on; else the seconds until the window resets.

    Fails open: when Redis refuses, drops or does not answer within
    ``RATE_LIMIT_REDIS_TIMEOUT`` the request is allowed and counted. The count is kept in
    the process until Redis answers again, then added to an hourly counter the dashboard
    shows (:func:`api_rate_limit_fail_open_count`).
    """
    global _fail_open_pending
    now = time.time() if now is None else now
    window = int(now // 60)
    key = f"api:rate:{token.pk}:{window}"
    with _fail_open_lock:
        pending, _fail_open_pending = _fail_open_pending, 0
    try:
        pipe = redis_client(timeout=RATE_LIMIT_REDIS_TIMEOUT).pipeline()
        pipe.incr(key).expire(key, 120)
        if pending:
            hour_key = _fail_open_key(int(now // 3600))
            pipe.incrby(hour_key, pending).expire(hour_key, FAIL_OPEN_TTL)
        count = pipe.execute()[0]
    except RedisError as exc:
        with _fail_open_lock:
            _fail_open_pending += pending + 1
        logger.warning("API rate limiter unavailable (%s); request allowed", exc.__class__.__name__)
        return None
    if count > settings.API_RATE_LIMIT_PER_MINUTE:
        return max(math.ceil((window + 1) * 60 - now), 1)
    return None


def api_rate_limit_fail_open_count(start: float, end: float) -> int:
    """Requests let through unchecked because the limiter's Redis failed, in [start, end)
    (whole hours), plus those this process has not been able to record yet."""
    hours = range(int(start // 3600), int((end - 1) // 3600) + 1)
    try:
        values = redis_client(timeout=RATE_LIMIT_REDIS_TIMEOUT).mget(
            [_fail_open_key(h) for h in hours]
        )
    except RedisError:
        values = []
    return sum(int(v) for v in values if v) + _fail_open_pending
