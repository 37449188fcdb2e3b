"""Rejected webhook deliveries (bad signature, malformed body), counted in Redis.

A rejected delivery is never stored (it is not a verified Stripe event), so it is counted
here instead: one counter per minute and one per hour, read by the console's dashboard
and alert rules. The keys expire after ``REJECTION_TTL``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone
from redis.exceptions import RedisError

from config.queueing import redis_client

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
REJECTION_TTL = int(timedelta(days=8).total_seconds())


def _rejection_keys(moment: datetime) -> tuple[str, str]:
    return (
        f"console:webhook_rejected:m:{moment:%Y%m%d%H%M}",
        f"console:webhook_rejected:h:{moment:%Y%m%d%H}",
    )


def webhook_rejection_record(*, now: datetime | None = None) -> None:
    """Count one rejected delivery. Never raises: a Redis outage must not turn a 400 into
    a 500 (Stripe would then retry a delivery that can never succeed)."""
    minute_key, hour_key = _rejection_keys(now or timezone.now())
    try:
        pipe = redis_client().pipeline()
        pipe.incr(minute_key).expire(minute_key, REJECTION_TTL)
        pipe.incr(hour_key).expire(hour_key, REJECTION_TTL)
        pipe.execute()
    except RedisError as exc:
        logger.warning("could not count a rejected webhook delivery: %s", exc.__class__.__name__)


def webhook_rejection_count(start: datetime, end: datetime) -> int:
    """Rejected deliveries in [start, end): whole hours from the hour keys, the partial
    hours at both ends from the minute keys (one MGET). 0 when Redis is unreachable."""
    keys: list[str] = []
    moment = start.replace(second=0, microsecond=0)
    while moment < end:
        if moment.minute == 0 and moment + HOUR <= end:
            keys.append(_rejection_keys(moment)[1])
            moment += HOUR
        else:
            keys.append(_rejection_keys(moment)[0])
            moment += timedelta(minutes=1)
    if not keys:
        return 0
    try:
        values = redis_client().mget(keys)
    except RedisError:
        return 0
    return sum(int(v) for v in values if v)
