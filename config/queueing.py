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
from collections.abc import Callable
from typing import Any

import django_rq
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError
from rq import Queue

logger = logging.getLogger(__name__)

QUEUE_NAMES = ("webhooks", "sync", "default")


_queues: dict[tuple[str, str], Queue] = {}
_queues_lock = threading.Lock()


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
            queue = _queues.setdefault(key, django_rq.get_queue(name, commit_mode="auto"))
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
