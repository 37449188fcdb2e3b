"""Enqueue background jobs only after the transaction that justifies them commits.

Every service registers follow-up work through :func:`enqueue_on_commit`. Inside an
atomic block the job is handed to Redis when the outermost transaction commits; if it
rolls back the job is never sent. If Redis is unreachable at that moment the error is
logged, not raised: the database row that caused the job is already committed, and the
periodic sweepers re-enqueue work that has no job (nothing is lost, nothing fails the
request that already succeeded).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue

logger = logging.getLogger(__name__)

QUEUE_NAMES = ("webhooks", "sync", "default")


_queues: dict[tuple[str, str], Queue] = {}
_queues_lock = threading.Lock()
_clients: dict[tuple[str, float], redis.Redis] = {}


def _without_timeouts(url: str) -> str:
    # redis-py lets the URL's query override keyword arguments: drop the timeouts settings
    # put there for django-rq's own clients so ``timeout`` below decides.
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query)
        if k not in {"socket_timeout", "socket_connect_timeout", "health_check_interval"}
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def redis_client(*, timeout: float | None = None) -> redis.Redis:
    """The process's Redis client for product code: bounded waits, one quick retry.

    redis-py's default client retries a timed-out command three times with backoff of up
    to 10 s, so a Redis that accepts connections and never answers held a request for
    12 s and more. This one waits at most ``timeout`` (default ``REDIS_SOCKET_TIMEOUT``)
    to connect and to read and retries once without pause (a connection the server closed
    while idle is common and harmless): at most twice ``timeout`` per command. No
    ``health_check_interval``: with a retry, its PING on the new connection doubled the
    wait on a hanging Redis (measured: 1.6 s instead of 0.8 s at 0.4 s). Kept per process
    and URL (the pool is thread-safe and resets itself in a forked child).
    """
    url = _without_timeouts(str(settings.RQ_QUEUES["default"]["URL"]))
    wait = settings.REDIS_SOCKET_TIMEOUT if timeout is None else timeout
    key = (url, wait)
    client = _clients.get(key)
    if client is None:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=min(settings.REDIS_CONNECT_TIMEOUT, wait),
            socket_timeout=wait,
            retry=Retry(NoBackoff(), 1),
        )
        client = _clients.setdefault(key, client)
    return client


def _queue(name: str) -> Queue:
    """One RQ queue object per process, queue name and Redis URL.

    ``django_rq.get_queue`` builds a new Redis client, with a new connection pool, on
    every call: each enqueue would open (and handshake) a fresh TCP connection. Keeping
    the queue keeps its pool; redis-py pools are thread-safe and reset themselves in a
    forked child. Keyed by URL so a test that points a queue elsewhere gets a new one.
    """
    key = (name, str(settings.RQ_QUEUES[name].get("URL", "")))
    queue = _queues.get(key)
    if queue is None:
        with _queues_lock:
            # commit_mode="auto": enqueue_now is already the post-commit step.
            queue = _queues.setdefault(
                key, django_rq.get_queue(name, commit_mode="auto", connection=redis_client())
            )
    return queue


def enqueue_now(queue: str, func: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> bool:
    """Send one job to ``queue`` at once; False (and a log line) if Redis refused it."""
    if queue not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}; expected one of {QUEUE_NAMES}")
    try:
        rq_queue = _queue(queue)
        # One round trip: without a pipeline RQ sends the queue registration and the job
        # in two MULTI/EXEC transactions.
        with rq_queue.connection.pipeline() as pipe:
            rq_queue.enqueue(func, *args, pipeline=pipe, **kwargs)
            pipe.execute()
    except RedisError as exc:
        name = getattr(func, "__qualname__", func)
        logger.warning("could not enqueue %s on %s (%s); the sweeper will retry", name, queue, exc)
        return False
    return True


def enqueue_on_commit(
    queue: str, func: Callable[..., Any] | str, *args: Any, **kwargs: Any
) -> None:
    """Enqueue ``func(*args, **kwargs)`` on ``queue`` once the current transaction commits.

    Outside a transaction (autocommit) the job is sent immediately. Jobs take primitive
    ids, never model instances, so they read committed rows when they run.
    """
    if queue not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}; expected one of {QUEUE_NAMES}")
    transaction.on_commit(lambda: enqueue_now(queue, func, *args, **kwargs))


# --- work signals: one pending job for work that waits in a table ----------------------

SIGNAL_PREFIX = "switchboard:signal:"


# When this process last signalled each work, or found its signal set (monotonic seconds,
# taken before asking Redis): see ``debounce`` below.
_signalled: dict[str, float] = {}


def signal_work(
    name: str, queue: str, func: Callable[..., Any] | str, *, ttl: int, debounce: float = 0.0
) -> bool:
    """Enqueue ``func()`` on ``queue`` unless a job for the work called ``name`` is already
    pending. Returns True when a job was sent.

    For work that waits in a table (billing's drain jobs claim rows themselves): the
    writer of a row calls this after its commit. One ``SET NX EX`` decides (one round
    trip; a second round trip, the enqueue, only for the caller that set it), so a burst
    of rows costs one job, not one per row. The job calls :func:`signal_clear` before it
    claims, so a row committed after that point signals a new job; a key whose job was
    lost lapses after ``ttl`` seconds. If Redis is down, nothing is sent and the row
    waits for the sweeper (logged, never raised).

    ``debounce`` (seconds; the webhook's hot path): within that long after this process
    signalled, or found the signal set, it asks Redis nothing (a round trip and about
    0.15 ms of CPU per event). Safe because the job it saw pending then had not started
    (a job clears the signal when it starts), and a drain that ends lingers at least as
    long (:func:`drain`'s ``linger``) and claims once more: its last claim comes after
    any row committed in the window.
    """
    if debounce and time.monotonic() - _signalled.get(name, float("-inf")) < debounce:
        return False
    asked = time.monotonic()
    key = SIGNAL_PREFIX + name
    try:
        client = redis_client()
        if not client.set(key, 1, nx=True, ex=max(int(ttl), 1)):
            _signalled[name] = asked  # a job is pending: it claims what commits till it runs
            return False
    except RedisError as exc:
        logger.warning("could not signal %s work (%s); the sweeper will retry", name, exc)
        return False
    if not enqueue_now(queue, func):
        signal_clear(name)  # best effort: let the next writer try again at once
        return False
    _signalled[name] = asked
    return True


def queue_waiting(queue: str) -> bool:
    """Whether ``queue`` has jobs waiting for a worker: a long drain of lesser work checks
    it between batches and steps aside. False when Redis cannot say."""
    try:
        return bool(_queue(queue).count)
    except RedisError:
        return False


def signal_clear(name: str) -> None:
    """Called by the job a signal sent, before it claims: later rows signal again."""
    try:
        redis_client().delete(SIGNAL_PREFIX + name)
    except RedisError as exc:
        logger.warning("could not clear the %s signal (%s); it lapses by itself", name, exc)


def signal_work_on_commit(
    name: str, queue: str, func: Callable[..., Any] | str, *, ttl: int, debounce: float = 0.0
) -> None:
    """:func:`signal_work` once the current transaction commits (at once in autocommit)."""
    if queue not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}; expected one of {QUEUE_NAMES}")
    transaction.on_commit(lambda: signal_work(name, queue, func, ttl=ttl, debounce=debounce))


def drain(
    name: str,
    queue: str,
    func: Callable[..., Any] | str,
    batch: Callable[[], int],
    *,
    max_seconds: float | None = None,
    step_aside_for: str | None = None,
    linger: float = 0.0,
) -> int:
    """The loop of a drain job for the work called ``name``: clear its signal (rows
    committed from now on signal a new job), then run ``batch()`` (returns how many rows
    it took; 0 when none is left) until it takes none. After ``max_seconds``
    (``DRAIN_MAX_SECONDS``), or when a job waits on ``step_aside_for`` (workers take that
    queue first), it signals a fresh job on ``queue`` to carry on and returns. Returns
    the number of rows taken.

    ``linger``: when nothing is left, wait that long and look once more before ending,
    for writers that signal with a ``debounce`` no longer than it (:func:`signal_work`).
    """
    signal_clear(name)
    limit = settings.DRAIN_MAX_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + limit
    total = 0
    lingered = not linger
    while True:
        taken = batch()
        total += taken
        if not taken:
            if lingered:
                return total
            lingered = True
            time.sleep(linger)  # a bounded pause (see linger), not a poll
            continue
        if time.monotonic() > deadline or (step_aside_for and queue_waiting(step_aside_for)):
            signal_work(name, queue, func, ttl=settings.DRAIN_SIGNAL_TTL_SECONDS)
            return total
