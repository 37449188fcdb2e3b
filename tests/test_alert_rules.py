"""Alert rules: each fires once, stays quiet while its condition holds, and recovers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing.models import HandlerRun, ReconcileRun
from billing.rejections import webhook_rejection_record
from console.alert_rules import alerts_evaluate
from console.models import Alert
from delivery.models import OutboxMessage
from tests.console_support import handler_run, outbox, stripe_event
from tests.factories import CustomerFactory
from tests.stripe_support.fixtures import drain

pytestmark = pytest.mark.django_db


def webhook_failures(now):
    for _ in range(4):
        webhook_rejection_record(now=now)
    return "webhook_failures", lambda: now + timedelta(minutes=11)


def dead_handler_run(now):
    run = handler_run(stripe_event(), handler="crm_update", status="dead", last_error="HTTP 500")

    def fix():
        HandlerRun.objects.filter(pk=run.pk).update(status="succeeded")
        return now

    return f"handler_dead:{run.pk}", fix


def dead_outbox_row(now):
    row = outbox(customer=None, channel="helpdesk", state="dead")
    return (
        "outbox_dead",
        lambda: OutboxMessage.objects.filter(pk=row.pk).update(state="delivered") and now,
    )


def paused_by_401(now):
    row = outbox(customer=None, channel="crm", state="paused", last_error="401 Unauthorized")
    return (
        "outbox_paused:crm",
        lambda: OutboxMessage.objects.filter(pk=row.pk).update(state="pending") and now,
    )


def event_lag(now):
    run = handler_run(stripe_event(received_at=now - timedelta(minutes=5)), lag_seconds=120)

    def fix():
        HandlerRun.objects.filter(pk=run.pk).update(
            finished_at=run.event.received_at + timedelta(seconds=1)
        )
        return now

    return "event_lag", fix


def stripe_silent(now):
    CustomerFactory(status="active")
    stripe_event(received_at=now - timedelta(hours=7))
    return "stripe_silent", lambda: stripe_event(received_at=now) and now


def reconcile_drift(now):
    ReconcileRun.objects.create(finished_at=now, drift_total=2, drift_counts={"status_mismatch": 2})
    return (
        "reconcile_drift",
        lambda: (
            ReconcileRun.objects.create(
                started_at=now + timedelta(seconds=1), finished_at=now, drift_total=0
            )
            and now
        ),
    )


def evaluate(capture, now):
    with capture(execute=True):
        result = alerts_evaluate(now=now)
    drain("sync")
    return result


@pytest.mark.parametrize(
    "condition",
    [
        webhook_failures,
        dead_handler_run,
        dead_outbox_row,
        paused_by_401,
        event_lag,
        stripe_silent,
        reconcile_drift,
    ],
)
def test_rule_fires_once_holds_quietly_and_recovers(condition, django_capture_on_commit_callbacks):
    now = timezone.now()
    key, fix = condition(now)

    first = evaluate(django_capture_on_commit_callbacks, now)
    assert first.raised == [key]
    assert len(mail.outbox) == 1 and "owner-alerts@example.test" in mail.outbox[0].to
    assert Alert.objects.get(key=key).state == "open"

    second = evaluate(django_capture_on_commit_callbacks, now)
    assert second.raised == [] and key in second.holding
    assert len(mail.outbox) == 1  # no repeat while the condition holds

    later = fix()
    third = evaluate(django_capture_on_commit_callbacks, later)
    assert third.cleared == [key] and third.raised == []
    assert Alert.objects.get(key=key).state == "recovered"
    assert len(mail.outbox) == 2 and mail.outbox[1].subject.startswith("[Switchboard] Recovered: ")

    assert evaluate(django_capture_on_commit_callbacks, later).cleared == []  # recovers once


def test_acknowledged_alert_is_not_raised_again(owner, django_capture_on_commit_callbacks):
    from console.alerts import alert_acknowledge

    now = timezone.now()
    outbox(customer=None, channel="crm", state="dead")
    evaluate(django_capture_on_commit_callbacks, now)
    alert_acknowledge(actor=owner, alert_pk=Alert.objects.get(key="outbox_dead").pk)
    assert evaluate(django_capture_on_commit_callbacks, now).raised == []
    assert Alert.objects.filter(key="outbox_dead").count() == 1


def test_scheduler_evaluates_the_rules(django_capture_on_commit_callbacks):
    from io import StringIO

    from django.core.management import call_command

    outbox(customer=None, channel="crm", state="dead")
    out = StringIO()
    call_command("run_scheduler", "--once", stdout=out)
    assert Alert.objects.filter(key="outbox_dead", state="open").exists()
    assert "outbox_dead" in out.getvalue()
