"""A client-side rate limiter per vendor, shared by every worker through Redis.

Each request reserves its own time slot: slots of one bucket are at least
``1 / (rate * SYNC_RATE_HEADROOM)`` seconds apart, whichever worker or process asks, so
the vendor never sees more than its count in any window of its own (HubSpot's 100 per
10 s, Zendesk's 200 per minute): even spacing is the steadiest way to stay under a
rolling window, and the headroom absorbs network jitter between our slot and the
vendor's clock (``SYNC_RATE_HEADROOMS`` gives short windows of few requests more). A vendor may have extra buckets (``hubspot_search``: HubSpot's search
endpoints allow 4 requests/s per token on top of the app's limit); a search takes a slot
from both. The reservation is one Lua script (atomic in
Redis, on Redis's clock, so workers on machines with skewed clocks still agree). A
caller whose slot is further away than ``max_wait`` gets nothing reserved and is told how
long to wait: the outbox then reschedules the row instead of holding a worker.

A vendor's 429 holds the whole vendor, every bucket of it (:func:`block_for`): no worker
sends to it before that time has passed.
"""

from __future__ import annotations

import time

from django.conf import settings

from config.queueing import redis_client

# KEYS[1]: the vendor's key; ARGV: interval (µs), max wait (µs).
# Returns the wait in µs (>= 0) for a reserved slot, or -(wait) when not reserved.
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, last + interval)
local wait = slot - now
if wait > max_wait then
  return -wait
end
redis.call('SET', KEYS[1], slot, 'PX', 3600000)
return wait
"""

# Push the vendor's next free slot to at least now + ARGV[1] µs.
_BLOCK = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local until_ = now + tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > last then
  redis.call('SET', KEYS[1], until_, 'PX', 3600000)
end
return until_
"""


class RateLimited(Exception):
    """No slot within ``max_wait``; try again after ``wait`` seconds."""

    def __init__(self, vendor: str, wait: float) -> None:
        super().__init__(f"{vendor}: client-side rate limit, next slot in {wait:.2f}s")
        self.wait = wait


def _key(vendor: str) -> str:
    return f"switchboard:ratelimit:{vendor}"


def _rate(vendor: str) -> float:
    headroom = getattr(settings, "SYNC_RATE_HEADROOMS", {}).get(vendor, settings.SYNC_RATE_HEADROOM)
    return float(settings.SYNC_RATE_LIMITS.get(vendor, 0) or 0) * headroom


def buckets(vendor: str) -> list[str]:
    """The vendor's own bucket and its extra ones (``hubspot``, ``hubspot_search``)."""
    return [vendor] + [name for name in settings.SYNC_RATE_LIMITS if name.startswith(f"{vendor}_")]


def acquire(vendor: str, *, max_wait: float | None = None) -> float:
    """Wait for this request's slot; returns the seconds waited. Raises RateLimited when
    the slot is further than ``max_wait`` (``SYNC_RATE_MAX_WAIT_SECONDS``)."""
    rate = _rate(vendor)
    if rate <= 0:
        return 0.0
    if max_wait is None:
        max_wait = settings.SYNC_RATE_MAX_WAIT_SECONDS
    connection = redis_client()
    waited = connection.eval(
        _RESERVE, 1, _key(vendor), int(1_000_000 / rate), int(max_wait * 1_000_000)
    )
    if waited < 0:
        raise RateLimited(vendor, -waited / 1_000_000)
    seconds = waited / 1_000_000
    if seconds > 0:
        time.sleep(seconds)  # holding this worker for a reserved slot, bounded by max_wait
    return seconds


def block_for(vendor: str, seconds: float) -> None:
    """The vendor said "not before ``seconds``": no worker sends to it, through any of its
    buckets, before then."""
    if seconds > 0:
        connection = redis_client()
        for bucket in buckets(vendor):
            connection.eval(_BLOCK, 1, _key(bucket), int(seconds * 1_000_000))
