"""The events table is the queue: ingest signals one drain job, drains claim batches.

Outcomes asserted: RQ jobs counted in Redis for a burst, the order a customer's events
are applied in, a poisoned event isolated in its batch, a killed worker's claim redone
once (one ticket, one CRM contact each), Redis down at ingest, and concurrent drainers
on real PostgreSQL never taking the same event.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import django_rq
import pytest
from django.db import connection, connections

from billing import handlers, services, status_map
from billing.models import EventStatus, HandlerRun, RunStatus, StripeEvent
from config import queueing
from customers.models import Customer
from delivery.models import OutboxMessage, OutboxState
from devkit import stripe_events as events
from devkit.signing import encode
from support.models import Ticket
from tests.fakes.fixtures import run_all
from tests.stripe_support.fixtures import drain
from tests.test_pipeline_recovery import ROOT, descendants, later


def rq_jobs() -> list[str]:
    """Every job RQ holds in Redis (queued, running or finished: RQ keeps a finished
    job's hash for its result TTL), by description."""
    redis = django_rq.get_connection("default")
    found = []
    for key in redis.scan_iter("rq:job:*"):
        if redis.type(key) == b"hash":
            found.append((redis.hget(key, "description") or b"").decode())
    return found


def billing_jobs() -> list[str]:
    return [job for job in rq_jobs() if job.startswith("billing.")]


def subscription_events(count: int, *, customers: int, base: int | None = None) -> list[dict]:
    base = base or int(time.time()) - 3600
    ids = [events.new_id("cus") for _ in range(customers)]
    return [
        events.event(
            "customer.subscription.created",
            events.subscription(ids[n % customers], status="active"),
            created=base + n,
        )
        for n in range(count)
    ]


@pytest.mark.django_db
def test_a_burst_of_events_costs_one_drain_job_not_one_job_per_event(webhook, hubspot):
    burst = subscription_events(60, customers=6)
    for event in burst:
        assert webhook.post(event).status_code == 200
    assert django_rq.get_queue("webhooks").count == 1
    assert billing_jobs() == ["billing.jobs.drain_events_job()"]

    run_all()
    assert StripeEvent.objects.filter(status=EventStatus.PROCESSED).count() == 60
    assert Customer.objects.filter(status="active").count() == 6
    assert not HandlerRun.objects.exclude(status=RunStatus.SUCCEEDED).exists()
    assert len(hubspot.contacts) == 6
    assert not OutboxMessage.objects.exclude(
        state__in=[OutboxState.DELIVERED, OutboxState.SUPERSEDED]
    ).exists()
    # Three jobs in all for 60 events, their follow-up runs and their CRM rows: the
    # events' drain, one follow-up drain and one outbox drain.
    assert sorted(rq_jobs()) == [
        "billing.jobs.drain_events_job()",
        "billing.jobs.drain_runs_job()",
        "delivery.jobs.outbox_drain_job()",
    ]


@pytest.mark.django_db
def test_one_customers_events_are_applied_in_created_order_within_a_batch(webhook, monkeypatch):
    cus = events.new_id("cus")
    sub_id = events.new_id("sub")
    base = int(time.time()) - 3600
    statuses = ["trialing", "active", "past_due", "active", "past_due", "canceled"]
    sent = [
        events.event(
            "customer.subscription.updated",
            events.subscription(cus, status=status, sub_id=sub_id),
            created=base + 10 * n,
        )
        for n, status in enumerate(statuses)
    ]
    random.Random(16).shuffle(sent)
    applied: list[str] = []
    projection = handlers.HANDLERS[status_map.PROJECTION]

    def recording(event):
        applied.append(event.stripe_id)
        return projection(event)

    monkeypatch.setitem(handlers.HANDLERS, status_map.PROJECTION, recording)
    for event in sent:
        webhook.post(event)
    drain()
    assert applied == [e["id"] for e in sorted(sent, key=lambda e: e["created"])]
    assert Customer.objects.get(stripe_customer_id=cus).status == "canceled"


@pytest.mark.django_db
def test_a_poisoned_projection_does_not_block_the_others_in_its_batch(webhook, monkeypatch):
    burst = subscription_events(10, customers=2)
    poisoned = burst[4]["id"]
    projection = handlers.HANDLERS[status_map.PROJECTION]

    def poison(event):
        if event.stripe_id == poisoned:
            raise ValueError("a field this code cannot read")
        return projection(event)

    monkeypatch.setitem(handlers.HANDLERS, status_map.PROJECTION, poison)
    for event in burst:
        webhook.post(event)
    drain()
    runs = HandlerRun.objects.filter(handler=status_map.PROJECTION)
    assert runs.filter(status=RunStatus.SUCCEEDED).count() == 9
    bad = runs.get(event__stripe_id=poisoned)
    assert bad.status == RunStatus.FAILED and "cannot read" in bad.last_error
    assert Customer.objects.filter(status="active").count() == 2


@pytest.mark.django_db
def test_an_event_that_cannot_be_prepared_fails_alone_and_is_retried(webhook, monkeypatch):
    burst = subscription_events(6, customers=1)  # one customer: one group, one transaction
    poisoned = burst[2]["data"]["object"]["id"]
    broken = {"on": True}

    def prepare(events_):
        for event in events_:
            if broken["on"] and event.object_id == poisoned:
                raise RuntimeError("poisoned")
        return real_prepare(events_)

    real_prepare = services._events_prepare
    monkeypatch.setattr(services, "_events_prepare", prepare)
    for event in burst:
        webhook.post(event)
    drain()
    rows = StripeEvent.objects.all()
    assert rows.filter(status=EventStatus.PROCESSED).count() == 5
    failed = rows.get(status=EventStatus.FAILED)
    assert failed.object_id == poisoned and "poisoned" in failed.last_error
    assert failed.claimed_until is None
    assert Customer.objects.filter(status="active").count() == 1

    broken["on"] = False  # fixed (a deploy): the sweeper retries it
    assert services.sweep(now=later(60))["events"] == 1
    drain()
    failed.refresh_from_db()
    assert failed.status == EventStatus.PROCESSED
    assert (
        HandlerRun.objects.filter(handler=status_map.PROJECTION, status=RunStatus.SUCCEEDED).count()
        == 6
    )


@pytest.mark.django_db
def test_redis_down_at_ingest_stores_the_burst_and_the_sweeper_drains_it(webhook, settings):
    good = {name: dict(cfg) for name, cfg in settings.RQ_QUEUES.items()}
    settings.RQ_QUEUES = {
        name: {**cfg, "URL": "redis://127.0.0.1:1/0"} for name, cfg in good.items()
    }
    burst = subscription_events(8, customers=4)
    for event in burst:
        assert webhook.post(event).status_code == 200
    assert StripeEvent.objects.filter(status=EventStatus.RECEIVED).count() == 8

    settings.RQ_QUEUES = good  # Redis is back; no job was sent
    assert billing_jobs() == []
    assert services.sweep(now=later(10))["events"] == 0  # too fresh: a drain may be coming
    assert services.sweep(now=later(60))["events"] == 8
    assert billing_jobs() == ["billing.jobs.drain_events_job()"]
    drain()
    assert StripeEvent.objects.filter(status=EventStatus.PROCESSED).count() == 8
    assert Customer.objects.filter(status="active").count() == 4


@pytest.mark.django_db
def test_a_follow_up_batch_hands_its_runs_back_when_events_wait(webhook, monkeypatch):
    for event in subscription_events(4, customers=2):
        assert webhook.post(event).status_code == 200
    assert services.events_drain_batch() == 4
    due = list(services._due_runs().values_list("pk", flat=True))
    assert due
    # An events drain job is waiting on `webhooks` from the first moment of the batch.
    monkeypatch.setattr(services, "YIELD_CHECK_SECONDS", -1)
    monkeypatch.setattr(services, "queue_waiting", lambda queue: queue == "webhooks")
    executed: list[int] = []
    monkeypatch.setattr(services, "_execute_claimed", lambda run, **kw: executed.append(run.pk))

    assert services.handler_runs_drain() > 0
    assert executed == []
    runs = HandlerRun.objects.filter(pk__in=due)
    assert set(runs.values_list("status", "attempts", "started_at")) == {
        (RunStatus.PENDING, 0, None)
    }
    # ... and a fresh follow-up drain is signalled to carry on after the events.
    assert "billing.jobs.drain_runs_job()" in billing_jobs()

    monkeypatch.setattr(services, "queue_waiting", lambda queue: False)
    services.handler_runs_drain()
    assert sorted(executed) == sorted(due)


@pytest.mark.django_db
def test_an_event_whose_signal_was_debounced_is_taken_by_the_lingering_drain(
    webhook, settings, monkeypatch
):
    """Ingest skips the Redis signal within DRAIN_SIGNAL_DEBOUNCE_SECONDS of the last one
    it sent; a delivery that arrives just after the drain found nothing left is still
    drained, by the drain's last look after its pause."""
    settings.DRAIN_SIGNAL_DEBOUNCE_SECONDS = 1.5
    monkeypatch.setattr(queueing, "_signalled", {})  # what earlier tests' signals left
    first, late = subscription_events(2, customers=2)
    assert webhook.post(first).status_code == 200  # signals: one drain job waits

    def events_jobs() -> list[str]:
        return [job for job in billing_jobs() if job == "billing.jobs.drain_events_job()"]

    assert events_jobs() == ["billing.jobs.drain_events_job()"]
    batch = services.events_drain_batch
    taken: list[int] = []

    def batch_then_a_late_delivery() -> int:
        taken.append(batch())
        if taken == [1, 0]:  # the drain has just found nothing left: a delivery arrives
            assert webhook.post(late).status_code == 200
        return taken[-1]

    monkeypatch.setattr(services, "events_drain_batch", batch_then_a_late_delivery)
    assert services.events_drain() == 2
    assert taken == [1, 0, 1, 0]
    assert len(events_jobs()) == 1  # the late delivery asked Redis nothing, sent no job
    assert StripeEvent.objects.filter(status=EventStatus.PROCESSED).count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_drainers_never_process_the_same_event(monkeypatch):
    total = 400
    for event in subscription_events(total, customers=40):
        services.event_ingest(payload=event, body=encode(event).decode())
    processed: list[str] = []
    claimed: list[int] = []
    lock = threading.Lock()
    projection = handlers.HANDLERS[status_map.PROJECTION]
    known = services.project_known

    def recording(event):  # one event at a time (a customer's first events)
        with lock:
            processed.append(event.stripe_id)
        return projection(event)

    def recording_known(groups):  # the batch path (customers known by then)
        done = known(groups)
        with lock:
            processed.extend(snap.event_id for key in done for snap in groups[key])
        return done

    handlers.HANDLERS[status_map.PROJECTION] = recording
    monkeypatch.setattr(services, "project_known", recording_known)
    barrier = threading.Barrier(4)

    def drainer():
        try:
            barrier.wait()
            count = 0
            while n := services.events_drain_batch(limit=25):
                count += n
            with lock:
                claimed.append(count)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=drainer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        handlers.HANDLERS[status_map.PROJECTION] = projection
    assert sum(claimed) == total and len(claimed) == 4
    assert len(processed) == total and len(set(processed)) == total
    assert StripeEvent.objects.filter(status=EventStatus.PROCESSED).count() == total
    assert set(
        HandlerRun.objects.filter(handler=status_map.PROJECTION).values_list("attempts", flat=True)
    ) == {1}


def _payment_trouble(cus_id: str, email: str, base: int) -> list[dict]:
    sub_id = events.new_id("sub")
    invoice = events.invoice(cus_id, subscription_id=sub_id, status="open")
    customer = {**events.customer(email=email, name=email.split("@")[0]), "id": cus_id}
    return [
        events.event("customer.created", customer, created=base),
        events.event(
            "customer.subscription.created",
            events.subscription(cus_id, status="active", sub_id=sub_id),
            created=base + 1,
        ),
        events.event("invoice.payment_failed", invoice, created=base + 2),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_claim_abandoned_by_a_killed_worker_is_redone_once(webhook, hubspot, zendesk, settings):
    """A real worker claims a batch of two customers' events, applies the first
    customer's, and is killed (SIGKILL) while the second's wait on a lock. Its claim
    expires; the next drain processes the rest once: one CRM contact and one ticket per
    customer, every run succeeded at its first attempt."""
    base = int(time.time()) - 3600
    first = _payment_trouble(events.new_id("cus"), "first@example.test", base)
    second = _payment_trouble(events.new_id("cus"), "second@example.test", base + 100)
    for event in first + second:
        assert webhook.post(event).status_code == 200
    blocked = StripeEvent.objects.get(stripe_id=second[0]["id"])

    # Another transaction holds the row the drain must insert for the second customer's
    # first event: the worker waits there, its claim committed, the first customer done.
    blocker = connections.create_connection("default")
    blocker.connect()
    cursor = blocker.cursor()
    cursor.execute("BEGIN")
    cursor.execute(
        "INSERT INTO billing_handlerrun (event_id, handler, status, attempts, last_error, "
        "note, changes, next_attempt_at, created_at) "
        "VALUES (%s, %s, 'pending', 0, '', '', '[]', now(), now())",
        [blocked.pk, status_map.PROJECTION],
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "webhooks", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (
            HandlerRun.objects.filter(
                handler=status_map.PROJECTION, status=RunStatus.SUCCEEDED
            ).count()
            == 3
            and StripeEvent.objects.filter(
                status=EventStatus.RECEIVED, claimed_until__isnull=False
            ).count()
            == 3
        ):
            assert time.monotonic() < deadline, "the worker never reached the second customer"
            assert worker.poll() is None, "the worker exited early"
            time.sleep(0.1)
        for pid in [*descendants(worker.pid), worker.pid]:
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        cursor.execute("ROLLBACK")
        blocker.close()

    run_all()  # the first customer's follow-ups; the claimed events stay with their claim
    assert StripeEvent.objects.filter(status=EventStatus.RECEIVED).count() == 3
    assert services.sweep(now=later(settings.DRAIN_CLAIM_SECONDS - 10))["claims"] == 0
    counts = services.sweep(now=later(settings.DRAIN_CLAIM_SECONDS + 20))
    assert (counts["claims"], counts["events"]) == (3, 3)
    run_all()

    assert StripeEvent.objects.filter(status=EventStatus.PROCESSED).count() == 6
    runs = HandlerRun.objects.all()
    assert set(runs.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    assert set(runs.values_list("attempts", flat=True)) == {1}
    assert len(hubspot.contacts) == 2
    assert sorted(c["properties"]["email"] for c in hubspot.contacts.values()) == [
        "first@example.test",
        "second@example.test",
    ]
    assert Ticket.objects.count() == 2
    assert len(zendesk.tickets) == 2


@pytest.mark.django_db
def test_the_sweepers_due_runs_are_retried_by_one_job_each_once(webhook, monkeypatch):
    burst = subscription_events(30, customers=30)  # more than one follow-up batch
    calls: list[str] = []

    def down(event):
        calls.append(event.stripe_id)
        raise ConnectionError("CRM down")

    monkeypatch.setitem(handlers.HANDLERS, "crm_update", down)
    for event in burst:
        webhook.post(event)
    drain()
    crm_runs = HandlerRun.objects.filter(handler="crm_update")
    assert crm_runs.filter(status=RunStatus.FAILED).count() == 30 and len(calls) == 30

    retried: list[str] = []

    def up(event):
        retried.append(event.stripe_id)
        return "sent"

    monkeypatch.setitem(handlers.HANDLERS, "crm_update", up)
    django_rq.get_connection("default").flushdb()
    assert services.sweep(now=later(4000))["runs"] == 30
    assert len(billing_jobs()) == 1  # one drain job carries the sweeper's 30 run ids
    drain()
    assert set(crm_runs.values_list("status", "attempts")) == {(RunStatus.SUCCEEDED, 2)}
    assert sorted(retried) == sorted(calls)  # every failed run retried, once
