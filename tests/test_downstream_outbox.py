"""The outbox against misbehaving vendors: 429 with Retry-After, 500, timeouts, 400, 401,
a CRM that is down while updates pile up. Fakes on loopback, RQ workers in burst mode;
waits the vendor imposes (a 1 s Retry-After) are polled with a bound, never slept."""

from __future__ import annotations

import logging
from datetime import timedelta
from itertools import pairwise

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from console.alerts import alert_clear, alert_raise
from console.models import Alert, AlertState
from crm_sync.lifecycle import contact_properties
from crm_sync.sync import CONTACT_SYNC, contact_coalesce_key
from delivery.jobs import outbox_deliver_job
from delivery.models import OutboxMessage, OutboxState
from delivery.outbox import outbox_retry, outbox_write
from devkit.fakes.hubspot import CONTACTS
from support.models import Ticket
from support.rules import TICKET_RULES
from support.services import ticket_open
from tests.factories import CustomerFactory
from tests.fakes.fixtures import (
    advance,
    run_all,
    sweep_and_run,
    until,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def write(django_capture_on_commit_callbacks):
    """Queue a contact update for a customer, committed as a handler run would."""

    def _write(customer, *, n: int = 0, **changes):
        for field, value in changes.items():
            setattr(customer, field, value)
        with django_capture_on_commit_callbacks(execute=True):
            row, _ = outbox_write(
                channel="crm",
                kind=CONTACT_SYNC,
                customer=customer,
                dedupe_key=f"crm:contact:{customer.pk}:test-{n}",
                coalesce_key=contact_coalesce_key(customer),
                payload={"properties": contact_properties(customer)},
            )
        return row

    return _write


def active_customers(count: int, **kw):
    return [CustomerFactory(status="active", **kw) for _ in range(count)]


def rows(state: str | None = None):
    qs = OutboxMessage.objects.all()
    return qs.filter(state=state) if state else qs


def test_crm_answering_429_is_delivered_afterwards_never_faster_than_the_limit(
    hubspot, write, settings
):
    rate = 10.0
    settings.SYNC_RATE_LIMITS = {**settings.SYNC_RATE_LIMITS, "hubspot": rate}
    customers = active_customers(6)
    hubspot.fail(429, times=2, retry_after=1)
    for customer in customers:
        write(customer)
    run_all()
    until(lambda: rows(OutboxState.DELIVERED).count() == 6, bound=15)

    assert sorted(
        c["properties"]["switchboard_customer_id"] for c in hubspot.contacts.values()
    ) == sorted(str(c.pk) for c in customers)
    throttled = hubspot.calls(status=429)
    assert len(throttled) == 2
    # Never faster than the limit: request starts at the vendor are >= 1/rate apart
    # (a little slack for the fake's own thread scheduling) ...
    times = sorted(r.at for r in hubspot.requests)
    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) >= 0.8 / rate, gaps
    # ... and nobody sent anything within Retry-After of the last 429.
    after = [r.at for r in hubspot.requests if r.at > throttled[-1].at]
    assert after and after[0] - throttled[-1].at >= 0.95
    assert rows(OutboxState.FAILED).count() == 0


def test_a_permanent_400_kills_that_row_with_an_alert_and_others_go_through(
    hubspot, write, client, finance_admin, support_agent, django_capture_on_commit_callbacks
):
    good = active_customers(2)
    bad = CustomerFactory(status="active", email="bounce@example.test")
    hubspot.reject_emails.add("bounce@example.test")
    for customer in [good[0], bad, good[1]]:
        write(customer)
    run_all()

    dead = OutboxMessage.objects.get(customer=bad, channel="crm")
    assert (dead.state, dead.attempts) == (OutboxState.DEAD, 1)
    assert "400" in dead.last_error
    alert = Alert.objects.get(key=f"sync:crm:dead:{dead.pk}")
    assert alert.state == AlertState.OPEN and alert.delivered_at is not None
    assert any(alert.title in m.subject for m in mail.outbox)
    assert Ticket.objects.get(customer=bad).queue.slug == "human_review"
    assert set(
        rows(OutboxState.DELIVERED).filter(channel="crm").values_list("customer", flat=True)
    ) == {c.pk for c in good}
    assert len(hubspot.contacts) == 2

    # Support agents cannot retry (or even see) outbox rows; finance admins can, audited.
    changelist = reverse("admin:delivery_outboxmessage_changelist")
    client.force_login(support_agent)
    assert client.get(changelist).status_code == 403
    hubspot.reject_emails.clear()  # the address was fixed in the CRM's validation
    client.force_login(finance_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist, {"action": "retry_messages", "_selected_action": [dead.pk]}
        )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="sync.outbox.retried")
    assert (entry.actor, entry.target_id, entry.data["before"]) == (
        finance_admin,
        str(dead.pk),
        "dead",
    )
    run_all()
    dead.refresh_from_db()
    assert dead.state == OutboxState.DELIVERED and len(hubspot.contacts) == 3


def test_401_pauses_delivery_with_one_alert_not_a_retry_storm(hubspot, write, settings):
    customers = active_customers(20)
    hubspot.token = "rotated-by-someone"  # our token no longer works
    for customer in customers:
        write(customer)
    run_all()
    assert len(hubspot.requests) == 1
    assert rows(OutboxState.PAUSED).count() == 20
    assert Alert.objects.filter(key="sync:crm:paused").count() == 1
    assert sum("paused" in m.subject for m in mail.outbox) == 1
    # The scheduler keeps sweeping: nothing is sent before the probe time.
    for _ in range(3):
        sweep_and_run()
    assert len(hubspot.requests) == 1

    advance(settings.SYNC_PAUSE_PROBE_SECONDS + 1)
    sweep_and_run()  # probe: still refused, parked again with one more request
    assert len(hubspot.requests) == 2 and rows(OutboxState.PAUSED).count() == 20

    hubspot.token = settings.HUBSPOT_TOKEN  # the token is fixed
    advance(settings.SYNC_PAUSE_PROBE_SECONDS + 1)
    sweep_and_run()
    assert (
        rows(OutboxState.DELIVERED).filter(channel="crm").count() == 20
    )  # alert emails are rows too
    assert len(hubspot.contacts) == 20
    assert Alert.objects.get(key="sync:crm:paused").state == AlertState.RECOVERED
    alerts = [m.subject for m in mail.outbox if "paused" in m.subject]
    # One alert while paused, then one "Recovered" message once it cleared: no storm.
    assert len(alerts) == 2 and sum(s.startswith("[Switchboard] Recovered:") for s in alerts) == 1


def test_fifty_updates_queued_while_the_crm_is_down_are_coalesced(hubspot, write, settings):
    customer = CustomerFactory(status="active", plan_name="plan 0")
    hubspot.fail(500, seconds=3600)
    write(customer, n=0)
    run_all()
    assert rows(OutboxState.FAILED).count() == 1 and len(hubspot.requests) == 1
    for n in range(1, 50):
        write(customer, n=n, plan_name=f"plan {n}")
    run_all()  # 49 delivery jobs, none due yet
    # A newer state inherits the failing row's retry time: no request per update.
    assert len(hubspot.requests) == 1
    assert rows(OutboxState.SUPERSEDED).count() == 49

    hubspot.heal()
    advance(settings.SYNC_BACKOFF_MAX_SECONDS)
    sweep_and_run()
    assert rows(OutboxState.DELIVERED).count() == 1
    contact = next(iter(hubspot.contacts.values()))
    assert contact["properties"]["switchboard_plan"] == "plan 49"
    assert (
        len(hubspot.calls(method="PATCH")) + len(hubspot.calls("POST", CONTACTS, status=201)) == 1
    )


def test_retries_cover_72_hours_then_dead_and_alerted(
    hubspot, write, settings, django_capture_on_commit_callbacks
):
    settings.SYNC_BACKOFF_MAX_SECONDS = 4 * 3600  # fewer steps to walk through 72 h
    customer = CustomerFactory(status="active")
    hubspot.fail(503, seconds=3600)
    row = write(customer)
    run_all()
    elapsed = timedelta(0)
    while True:
        row.refresh_from_db()
        if row.state != OutboxState.FAILED:
            break
        wait = row.next_attempt_at - timezone.now()
        assert timedelta(0) < wait <= timedelta(seconds=settings.SYNC_BACKOFF_MAX_SECONDS + 1)
        elapsed += wait
        advance(wait.total_seconds() + 0.01)
        with django_capture_on_commit_callbacks(execute=True):
            outbox_deliver_job(row.pk)  # the job the sweeper enqueues once the row is due
    assert row.state == OutboxState.DEAD
    assert elapsed >= timedelta(hours=django_settings.SYNC_RETRY_HORIZON_HOURS) - timedelta(
        minutes=1
    )
    assert 15 <= row.attempts <= 60 and len(hubspot.requests) == row.attempts
    assert Alert.objects.filter(key=f"sync:crm:dead:{row.pk}").exists()
    run_all()
    assert any("failed for good" in m.subject for m in mail.outbox)


@pytest.mark.parametrize("retry", ["backoff", "console"])
def test_helpdesk_timeout_after_creating_never_opens_a_second_ticket(
    retry, zendesk, owner, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(status="past_due")
    # Zendesk creates the ticket but the answer comes after our timeout.
    zendesk.hang(1.0, process=True, path="/api/v2/tickets.json", method="POST")
    rule = next(r for r in TICKET_RULES if r.queue == "billing")
    with django_capture_on_commit_callbacks(execute=True):
        ticket, _ = ticket_open(
            customer=customer,
            rule=rule,
            situation_key="payment_failed:in_x",
            subject="Payment failed",
            body="Amount: 20.00 USD",
        )
    run_all()
    row = OutboxMessage.objects.get(channel="helpdesk")
    assert row.state == OutboxState.FAILED and "timed out" in row.last_error
    assert len(zendesk.tickets) == 1
    if retry == "backoff":
        advance(django_settings.SYNC_BACKOFF_MAX_SECONDS)
        sweep_and_run()
    else:  # someone retries it from the console instead of waiting
        with django_capture_on_commit_callbacks(execute=True):
            assert outbox_retry(actor=owner, message_pks=[row.pk], reason="test") == 1
        run_all()
    row.refresh_from_db()
    ticket.refresh_from_db()
    assert row.state == OutboxState.DELIVERED
    assert len(zendesk.tickets) == 1 and ticket.external_id == str(next(iter(zendesk.tickets)))


def test_slack_alerts_go_through_the_outbox_and_are_retried_after_a_500(
    slack, django_capture_on_commit_callbacks
):
    slack.fail(500, times=1)
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(key="test:slack", title="Disk almost full", detail="93% used")
    run_all()
    row = OutboxMessage.objects.get(channel="slack")
    assert row.state == OutboxState.FAILED and "500" in row.last_error
    assert slack.messages == []
    advance(django_settings.SYNC_BACKOFF_MAX_SECONDS)
    sweep_and_run()
    row.refresh_from_db()
    assert row.state == OutboxState.DELIVERED
    assert len(slack.messages) == 1 and "Disk almost full" in slack.messages[0]
    # The condition clears: one "recovered" message, through the outbox too.
    with django_capture_on_commit_callbacks(execute=True):
        alert_clear(key="test:slack")
    run_all()
    assert OutboxMessage.objects.filter(channel="slack", kind="recovered").count() == 1
    assert len(slack.messages) == 2 and "Recovered: Disk almost full" in slack.messages[1]


def test_slack_webhook_path_never_reaches_last_error_logs_alerts_or_mail(
    slack, django_capture_on_commit_callbacks, caplog
):
    secret_path = "/services/T000/B000/XXXX"  # the webhook's credential (fixture `slack`)
    slack.fail(500, seconds=3600)
    with caplog.at_level(logging.DEBUG):
        with django_capture_on_commit_callbacks(execute=True):
            alert_raise(key="test:slack-leak", title="Disk almost full", detail="93% used")
        run_all()
        row = OutboxMessage.objects.get(channel="slack")
        assert row.state == OutboxState.FAILED and "500" in row.last_error
        # Past the retry horizon the row dies: a dead-row alert and mail to the owners.
        advance(django_settings.SYNC_RETRY_HORIZON_HOURS * 3600)
        sweep_and_run()
    row.refresh_from_db()
    assert row.state == OutboxState.DEAD
    assert "slack POST 127.0.0.1:" in row.last_error
    dead_alert = Alert.objects.get(key=f"sync:slack:dead:{row.pk}")
    assert row.last_error in dead_alert.detail
    leaks = [
        row.last_error,
        row.outcome,
        caplog.text,
        *Alert.objects.values_list("detail", flat=True),
        *(f"{m.subject} {m.body}" for m in mail.outbox),
    ]
    assert not [text for text in leaks if secret_path in text or "T000/B000" in text]


def test_scheduler_recovers_a_row_stuck_in_delivering(hubspot, write, settings):
    from django.core.management import call_command

    row = write(CustomerFactory(status="active"))
    # A worker claimed it and died before the vendor answered.
    OutboxMessage.objects.filter(pk=row.pk).update(
        state=OutboxState.DELIVERING,
        attempts=1,
        updated_at=timezone.now() - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS + 1),
    )
    django_rq_flush_sync()
    call_command("run_scheduler", "--once", stdout=__import__("io").StringIO())
    run_all()
    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutboxState.DELIVERED, 2)
    assert len(hubspot.contacts) == 1


def django_rq_flush_sync() -> None:
    import django_rq

    django_rq.get_queue("sync").empty()
