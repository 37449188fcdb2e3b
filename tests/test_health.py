"""Liveness, readiness, worker liveness and bounded waits on a down or hanging Redis."""

from __future__ import annotations

import contextlib

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from console.alert_rules import alerts_evaluate
from console.api_tokens import api_rate_limit_fail_open_count, api_token_create
from console.dashboard import dashboard
from console.models import Alert
from tests.factories import CustomerFactory
from tests.fault_support import free_port, hanging_server


@contextlib.contextmanager
def redis_at(settings, url):
    """Point every product Redis client at ``url`` for the block."""
    good = settings.RQ_QUEUES
    settings.RQ_QUEUES = {n: {**c, "URL": url} for n, c in good.items()}
    try:
        yield
    finally:
        settings.RQ_QUEUES = good


@contextlib.contextmanager
def live_worker():
    worker = django_rq.get_worker("default", worker_class=SimpleWorker)
    worker.register_birth()
    worker.heartbeat()
    try:
        yield worker
    finally:
        worker.register_death()


def test_healthz_answers_without_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ready_with_idle_or_no_workers_and_healthz_tells_worker_liveness(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["database"]["ok"] and body["redis"]["ok"] and body["migrations"]["ok"]
    assert body["redis"]["queue_depth"] == {"webhooks": 0, "sync": 0, "default": 0}
    assert "worker" not in body

    assert client.get("/healthz?details=1").json()["workers"]["alive"] == 0
    with live_worker():
        workers = client.get("/healthz?details=1").json()["workers"]
        assert workers["ok"] is True and workers["alive"] == 1


@pytest.mark.django_db
def test_readyz_fails_when_redis_is_unreachable_and_recovers(client, settings):
    with redis_at(settings, f"redis://127.0.0.1:{free_port()}/0"):
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["redis"]["ok"] is False
        assert down.json()["database"]["ok"] is True
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_and_the_api_answer_while_redis_hangs(client, settings, owner):
    """A Redis that accepts and never answers: readiness says so (it does not hang), the
    API's rate limiter lets the request through and the dashboard counts it."""
    token = api_token_create(actor=owner, name="widget")[1]
    customer = CustomerFactory(stripe_customer_id="cus_hang")
    start = timezone.now()
    with hanging_server() as port, redis_at(settings, f"redis://127.0.0.1:{port}/0"):
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["redis"] == {"ok": False, "error": "TimeoutError"}
        state = client.get(
            f"/api/v1/customers/{customer.stripe_customer_id}/state",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert state.status_code == 200
    # Redis answers again: the next request records the let-through one.
    client.get("/api/v1/customers/cus_hang/state", HTTP_AUTHORIZATION=f"Bearer {token}")
    end = timezone.now()
    assert api_rate_limit_fail_open_count(start.timestamp(), end.timestamp() + 1) >= 1
    board = dashboard(user=owner, window="1h")
    fail_open = next(m for m in board.workers if m.label.startswith("API requests let through"))
    assert fail_open.value >= 1 and fail_open.warn


@pytest.mark.django_db
def test_no_live_worker_raises_an_alert_that_clears_when_one_heartbeats(
    settings, django_capture_on_commit_callbacks
):
    settings.ALERT_WORKERS_DOWN = True
    with django_capture_on_commit_callbacks(execute=True):
        first = alerts_evaluate()
    assert "workers_down" in first.raised
    assert Alert.objects.get(key="workers_down").state == "open"
    with live_worker(), django_capture_on_commit_callbacks(execute=True):
        later = alerts_evaluate()
    assert "workers_down" in later.cleared
    assert Alert.objects.get(key="workers_down").state == "recovered"
