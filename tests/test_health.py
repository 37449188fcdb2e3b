"""Liveness and readiness endpoints."""

from __future__ import annotations

import django_rq
import pytest
from rq import SimpleWorker


def test_healthz_answers_without_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_needs_a_live_worker(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["worker"] == {"ok": False}

    worker = django_rq.get_worker("default", worker_class=SimpleWorker)
    worker.register_birth()
    worker.heartbeat()
    try:
        response = client.get("/readyz")
        assert response.status_code == 200, response.json()
        assert response.json()["redis"]["queue_depth"] == {"webhooks": 0, "sync": 0, "default": 0}
    finally:
        worker.register_death()


@pytest.mark.django_db
def test_readyz_fails_when_redis_is_unreachable_and_recovers(client, settings):
    worker = django_rq.get_worker("default", worker_class=SimpleWorker)
    worker.register_birth()
    worker.heartbeat()
    good = settings.RQ_QUEUES
    try:
        settings.RQ_QUEUES = {n: {**c, "URL": "redis://127.0.0.1:1/0"} for n, c in good.items()}
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["redis"]["ok"] is False
        settings.RQ_QUEUES = good
        assert client.get("/readyz").status_code == 200
    finally:
        settings.RQ_QUEUES = good
        worker.register_death()
