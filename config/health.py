"""Health endpoints for load balancers and uptime monitors.

``/healthz``: the process answers (no dependencies checked).
``/readyz``: PostgreSQL answers, Redis answers, queue depths, the newest RQ worker
heartbeat and the age of the last Stripe event; 503 when a dependency is down or no
worker has sent a heartbeat for READYZ_WORKER_STALE_SECONDS.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import django_rq
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError
from rq import Worker

from config.queueing import QUEUE_NAMES


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return {"ok": False, "error": exc.__class__.__name__}


def _redis() -> dict[str, Any]:
    try:
        conn = django_rq.get_connection("default")
        conn.ping()
        depths = {name: django_rq.get_queue(name).count for name in QUEUE_NAMES}
        workers = Worker.all(connection=conn)
        beats = [w.last_heartbeat for w in workers if w.last_heartbeat]
        newest = max(beats) if beats else None
        if newest is not None and timezone.is_naive(newest):
            newest = newest.replace(tzinfo=UTC)  # rq stores UTC
        age = (timezone.now() - newest).total_seconds() if newest else None
        return {
            "ok": True,
            "queue_depth": depths,
            "workers": len(workers),
            "worker_heartbeat_age_seconds": round(age, 1) if age is not None else None,
        }
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
    redis = _redis()
    checks: dict[str, Any] = {"database": database, "redis": redis}
    ready = database["ok"] and redis["ok"]
    if ready:
        checks["last_stripe_event_age_seconds"] = _last_stripe_event_age()
        age = redis.get("worker_heartbeat_age_seconds")
        worker_ok = age is not None and age <= settings.READYZ_WORKER_STALE_SECONDS
        checks["worker"] = {"ok": worker_ok}
        ready = worker_ok
    return JsonResponse(
        {"status": "ready" if ready else "not ready", **checks}, status=200 if ready else 503
    )
