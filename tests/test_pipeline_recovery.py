"""Nothing lost: retries alone, dead runs alert, sweepers recover lost jobs and Redis outages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from billing import handlers, services
from billing.models import EventStatus, HandlerRun, RunStatus, StripeEvent
from config import locks
from console.models import Alert
from customers.models import Customer
from devkit import stripe_events as events
from tests.stripe_support.fixtures import drain

ROOT = Path(__file__).resolve().parent.parent


def descendants(pid: int) -> list[int]:
    """Child processes of ``pid``, recursively, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def later(seconds: int):
    return timezone.now() + timedelta(seconds=seconds)


def send_customer_event(webhook, email="kim@example.test"):
    event = events.event(
        "customer.subscription.created", events.subscription(events.new_id("cus"), status="active")
    )
    assert webhook.post(event).status_code == 200
    return event


@pytest.mark.django_db
def test_handler_failing_three_times_then_succeeding_is_retried_alone(webhook, monkeypatch):
    calls = {"n": 0}

    def flaky_crm(event):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise ConnectionError("CRM timed out")
        return "CRM updated"

    monkeypatch.setitem(handlers.HANDLERS, "crm_update", flaky_crm)
    send_customer_event(webhook)
    drain()
    crm = HandlerRun.objects.get(handler="crm_update")
    projection = HandlerRun.objects.get(handler="customer_projection")
    assert (crm.status, crm.attempts) == (RunStatus.FAILED, 1)
    assert "CRM timed out" in crm.last_error
    first_delay = crm.next_attempt_at - timezone.now()
    assert timedelta(seconds=1) < first_delay <= timedelta(seconds=6)

    for _ in range(3):
        services.sweep(now=later(4000))
        drain()
    crm.refresh_from_db()
    assert (crm.status, crm.attempts, crm.note) == (RunStatus.SUCCEEDED, 4, "CRM updated")
    projection_after = HandlerRun.objects.get(pk=projection.pk)
    assert projection_after.attempts == 1  # the succeeded handler never ran again
    assert projection_after.finished_at == projection.finished_at
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_backoff_grows_exponentially_with_jitter(settings):
    settings.HANDLER_BACKOFF_BASE_SECONDS = 10
    settings.HANDLER_BACKOFF_MAX_SECONDS = 10_000
    delays = [services._backoff(n).total_seconds() for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        ceiling = 10 * 2 ** (n - 1)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.django_db
def test_handler_failing_always_goes_dead_and_alerts_once(webhook, monkeypatch, settings):
    settings.HANDLER_MAX_ATTEMPTS = 3

    def broken(event):
        raise RuntimeError("helpdesk rejected the ticket")

    monkeypatch.setitem(handlers.HANDLERS, "crm_update", broken)
    send_customer_event(webhook)
    drain()
    for _ in range(4):
        services.sweep(now=later(4000))
        drain()
    run = HandlerRun.objects.get(handler="crm_update")
    assert (run.status, run.attempts) == (RunStatus.DEAD, 3)
    alert = Alert.objects.get()
    assert "crm_update" in alert.title and "dead" in alert.title
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner-alerts@example.test"]
    assert "helpdesk rejected the ticket" in mail.outbox[0].body


@pytest.mark.django_db
def test_event_stored_without_a_job_is_picked_up_by_the_sweeper(webhook):
    event = send_customer_event(webhook)
    django_rq.get_queue("webhooks").empty()  # the job is lost
    assert services.sweep(now=later(10))["events"] == 0  # too fresh: its job may be coming
    assert services.sweep(now=later(60))["events"] == 1
    drain()
    row = StripeEvent.objects.get(stripe_id=event["id"])
    assert row.status == EventStatus.PROCESSED
    assert Customer.objects.filter(status="active").count() == 1


@pytest.mark.django_db
def test_redis_down_at_ingest_still_stores_and_acknowledges(webhook, settings):
    good = {name: dict(cfg) for name, cfg in settings.RQ_QUEUES.items()}
    settings.RQ_QUEUES = {
        name: {**cfg, "URL": "redis://127.0.0.1:1/0"} for name, cfg in good.items()
    }
    event = events.event("customer.created", events.customer())
    response = webhook.post(event)
    assert response.status_code == 200
    row = StripeEvent.objects.get(stripe_id=event["id"])
    assert row.status == EventStatus.RECEIVED

    settings.RQ_QUEUES = good  # Redis is back
    services.sweep(now=later(60))
    drain()
    row.refresh_from_db()
    assert row.status == EventStatus.PROCESSED
    assert Customer.objects.filter(stripe_customer_id=event["data"]["object"]["id"]).exists()


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_job_the_run_is_picked_up_again(webhook, settings):
    """A real worker process is killed while the projection waits on a lock; the sweeper
    notices the stuck run and it completes on another worker."""
    event = send_customer_event(webhook)
    stripe_customer = event["data"]["object"]["customer"]
    blocker = connections.create_connection("default")
    blocker.connect()
    cursor = blocker.cursor()
    cursor.execute("BEGIN")
    cursor.execute(f"SELECT pg_advisory_xact_lock({locks.LOCK_ID})", [stripe_customer])

    db_name = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "webhooks", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not HandlerRun.objects.filter(
            handler="customer_projection", status=RunStatus.STARTED
        ).exists():
            assert time.monotonic() < deadline, "the worker never started the projection"
            assert worker.poll() is None, "the worker exited early"
            time.sleep(0.1)
        # The whole worker dies, its forked work horse too (RQ puts the horse in a
        # session of its own), as when a machine goes away.
        for pid in [*descendants(worker.pid), worker.pid]:
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        cursor.execute("ROLLBACK")
        blocker.close()

    assert not Customer.objects.exists()
    assert services.sweep(now=later(30))["stuck"] == 0  # not stuck yet: could be slow
    counts = services.sweep(now=later(settings.SWEEP_STUCK_AFTER_SECONDS + 15))
    assert counts["stuck"] == 1
    drain()
    run = HandlerRun.objects.get(handler="customer_projection")
    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2)
    assert Customer.objects.filter(stripe_customer_id=stripe_customer, status="active").count() == 1
