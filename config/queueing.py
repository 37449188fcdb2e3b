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
from collections.abc import Callable
from typing import Any

import django_rq
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

QUEUE_NAMES = ("webhooks", "sync", "default")


def enqueue_now(queue: str, func: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> bool:
    """Send one job to ``queue`` at once; False (and a log line) if Redis refused it."""
    if queue not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}; expected one of {QUEUE_NAMES}")
    try:
        # commit_mode="auto": this function is already the post-commit step.
        django_rq.get_queue(queue, commit_mode="auto").enqueue(func, *args, **kwargs)
    except RedisError as exc:
        name = getattr(func, "__qualname__", func)
        logger.warning("could not enqueue %s on %s (%s); the sweeper will retry", name, queue, exc)
        return False
    return True


def enqueue_on_commit(queue: str, func: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> None:
    """Enqueue ``func(*args, **kwargs)`` on ``queue`` once the current transaction commits.

    Outside a transaction (autocommit) the job is sent immediately. Jobs take primitive
    ids, never model instances, so they read committed rows when they run.
    """
    if queue not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}; expected one of {QUEUE_NAMES}")
    transaction.on_commit(lambda: enqueue_now(queue, func, *args, **kwargs))
