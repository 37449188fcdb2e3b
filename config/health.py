"""Health endpoints for load balancers and uptime monitors.

``/healthz`` (liveness): the process answers; no dependency is checked, so a Redis or
database outage never gets web processes restarted. ``/healthz?details=1`` adds the
worker figures (below), bounded by the Redis timeouts.

``/readyz`` (readiness: may this node take traffic?): PostgreSQL answers, Redis answers
(with the queue depths) and every migration is applied; 503 otherwise. It answers well within
2 s whatever Redis does (its client waits at most ``HEALTH_REDIS_TIMEOUT`` per attempt, two
attempts, and stops at the first failure). Workers are *not* part of readiness: a quiet hour,
or workers being restarted, is no reason to pull the web tier; webhooks are stored and
wait for them. Worker liveness is watched separately (:func:`worker_liveness`): on the
dashboard, in ``/healthz?details=1`` and by the ``workers_down`` alert.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError
from rq import Worker

from config.queueing import QUEUE_NAMES, redis_client

# Per attempt (the client retries once): readiness stays well inside 2 s.
HEALTH_REDIS_TIMEOUT = 0.4

_migrations_applied = False


def worker_liveness() -> dict[str, Any]:
    """Workers registered in Redis and how many heartbeat recently enough to be alive.

    RQ workers heartbeat after every job and, idle, after every blocking wait on the
    queues (``RQ_WORKER_TTL`` - 15 s; ``run_workers`` sets the TTL), so ``alive`` counts
    workers whose last heartbeat is at most ``WORKER_STALE_SECONDS`` old. ``ok`` is None
    when Redis cannot be asked (unknown, not "dead").
    """
    try:
        workers = Worker.all(connection=redis_client(timeout=HEALTH_REDIS_TIMEOUT))
    except RedisError as exc:
        return {"ok": None, "error": exc.__class__.__name__}
    now = timezone.now()
    ages = []
    for worker in workers:
        beat = worker.last_heartbeat
        if beat is None:
            continue
        if timezone.is_naive(beat):
            beat = beat.replace(tzinfo=UTC)  # rq stores UTC
        ages.append((now - beat).total_seconds())
    alive = sum(1 for age in ages if age <= settings.WORKER_STALE_SECONDS)
    return {
        "ok": alive > 0,
        "registered": len(workers),
        "alive": alive,
        "newest_heartbeat_age_seconds": round(min(ages), 1) if ages else None,
        "stale_after_seconds": settings.WORKER_STALE_SECONDS,
    }


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    body: dict[str, Any] = {"status": "ok"}
    if request.GET.get("details"):
        body["workers"] = worker_liveness()
    return JsonResponse(body)


def _database() -> dict[str, Any]:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return {"ok": False, "error": exc.__class__.__name__}


def _migrations() -> dict[str, Any]:
    """Every migration on disk is applied. Once true it stays true for this process (a new
    release is a new process), so the check costs queries only until the first success."""
    global _migrations_applied
    if _migrations_applied:
        return {"ok": True}
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - cannot tell: not ready
        return {"ok": False, "error": exc.__class__.__name__}
    if pending:
        return {"ok": False, "pending": len(pending)}
    _migrations_applied = True
    return {"ok": True}


def _redis() -> dict[str, Any]:
    try:
        conn = redis_client(timeout=HEALTH_REDIS_TIMEOUT)
        conn.ping()
        with conn.pipeline(transaction=False) as pipe:
            for name in QUEUE_NAMES:
                pipe.llen(f"rq:queue:{name}")
            depths = dict(zip(QUEUE_NAMES, pipe.execute(), strict=True))
        return {"ok": True, "queue_depth": depths}
    except RedisError as exc:
        return {"ok": False, "error": exc.__class__.__name__}


def _last_stripe_event_age() -> float | None:
    from billing.models import StripeEvent

    last = (
        StripeEvent.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    )
    return round((timezone.now() - last).total_seconds(), 1) if last else None


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    database = _database()
    checks: dict[str, Any] = {
        "database": database,
        "migrations": _migrations() if database["ok"] else {"ok": False},
        "redis": _redis(),
    }
    ready = all(check["ok"] for check in checks.values())
    if database["ok"]:
        checks["last_stripe_event_age_seconds"] = _last_stripe_event_age()
    return JsonResponse(
        {"status": "ready" if ready else "not ready", **checks}, status=200 if ready else 503
    )
