"""The operations dashboard: its numbers equal independent counts of the rows behind them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from billing.models import HandlerRun, ReconcileRun, StripeEvent
from billing.rejections import webhook_rejection_record
from console.dashboard import dashboard, window_bounds
from console.models import Alert, EventHourlyStats
from console.stats import stats_rollup
from tests.console_support import handler_run, outbox, stripe_event, ticket
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario():
    """Three hours of traffic: payments, a failure and its recovery, duplicates, a broken
    envelope, dead runs, syncs, tickets, a reconcile with drift, an event from last week."""
    now = timezone.now()
    c = CustomerFactory(stripe_customer_id="cus_Dash1", status="active")
    times = [
        now - timedelta(hours=2, minutes=10),
        now - timedelta(minutes=70),
        now - timedelta(minutes=5),
    ]
    for i, at in enumerate(times):
        paid = stripe_event(customer=c, type="invoice.paid", received_at=at, delivery_count=1 + i)
        handler_run(paid, lag_seconds=0.3)
        handler_run(paid, handler="crm_update", status="dead" if i < 2 else "succeeded")
    failed = stripe_event(
        customer=c,
        type="invoice.payment_failed",
        object_id="in_recover",
        received_at=now - timedelta(minutes=50),
    )
    handler_run(failed, lag_seconds=3)
    stripe_event(
        customer=c,
        type="invoice.paid",
        object_id="in_recover",
        received_at=now - timedelta(minutes=20),
        delivery_count=2,
    )
    stripe_event(
        customer=c,
        type="customer.updated",
        status="failed",
        last_error="boom",
        received_at=now - timedelta(minutes=30),
    )
    stripe_event(
        type="", status="unusable", stripe_id=None, received_at=now - timedelta(minutes=15)
    )
    stripe_event(customer=c, type="invoice.paid", received_at=now - timedelta(days=6))
    webhook_rejection_record(now=now - timedelta(minutes=3))
    webhook_rejection_record(now=now - timedelta(minutes=3))
    minute_ago = now - timedelta(minutes=1)
    outbox(customer=c, channel="crm", state="delivered", created_at=minute_ago)
    outbox(customer=c, channel="crm", state="dead", created_at=minute_ago)
    outbox(customer=c, channel="crm", state="pending", created_at=minute_ago)
    outbox(customer=c, channel="helpdesk", state="delivered", created_at=minute_ago)
    ticket(customer=c, created_at=minute_ago)
    ReconcileRun.objects.create(
        finished_at=now, drift_total=3, drift_counts={"status_mismatch": 2, "plan_mismatch": 1}
    )
    return now


def independent(now, start):
    events = StripeEvent.objects.filter(received_at__gte=start, received_at__lt=now)
    stored = events.exclude(stripe_id=None)
    return {
        "stored": stored.count(),
        "deliveries": sum(stored.values_list("delivery_count", flat=True)),
        "duplicates": sum(d - 1 for d in stored.values_list("delivery_count", flat=True)),
        "failed": events.filter(status__in=["failed", "unusable"]).count(),
        "unusable": events.filter(status="unusable").count(),
        "dead": HandlerRun.objects.filter(
            status="dead", created_at__gte=start, created_at__lt=now
        ).count(),
        "payments": events.filter(type__in=["invoice.paid", "invoice.payment_failed"]).count(),
        "payments_failed": events.filter(type="invoice.payment_failed").count(),
    }


def metric(metrics, label):
    return next(m for m in metrics if m.label == label)


@pytest.mark.parametrize("window", ["1h", "24h", "7d"])
def test_numbers_equal_independent_counts(scenario, owner, window):
    now = scenario
    stats_rollup(now=now)  # closed hours come from the rollup, the current one is live
    start, _ = window_bounds(window, now)
    expected = independent(now, start)
    board = dashboard(user=owner, window=window, now=now)
    rejected = 2
    assert metric(board.webhooks, "Events stored").value == expected["stored"]
    assert metric(board.webhooks, "Duplicate deliveries").value == expected["duplicates"]
    assert metric(board.webhooks, "Webhook deliveries").value == (
        expected["deliveries"] + expected["unusable"] + rejected
    )
    assert metric(board.webhooks, "Failed deliveries").value == expected["failed"] + rejected
    assert board.run_counts["dead"] == expected["dead"]
    assert metric(board.payments, "Payments").value == expected["payments"]
    assert metric(board.payments, "Failed payments").value == expected["payments_failed"]
    assert metric(board.payments, "Recoveries").value == 1
    assert {m.label: m.value for m in board.drift} == {"plan mismatch": 1, "status mismatch": 2}
    assert [r.handler for r in board.dead_runs] == ["crm_update", "crm_update"]
    crm = {m.label: m.value for m in board.syncs["CRM"]}
    assert crm["Delivered"] == 1 and crm["Dead or paused"] == 1 and crm["Queue depth (now)"] == 1


def test_rollup_and_raw_reads_agree(scenario, owner):
    live = dashboard(user=owner, window="7d", now=scenario)
    assert not EventHourlyStats.objects.exists()
    assert stats_rollup(now=scenario) > 0
    rolled = dashboard(user=owner, window="7d", now=scenario)
    assert [(m.label, m.value) for m in rolled.webhooks] == [
        (m.label, m.value) for m in live.webhooks
    ]
    assert rolled.run_counts == live.run_counts
    # running it again changes nothing (recomputed, not added)
    stats_rollup(now=scenario)
    again = dashboard(user=owner, window="7d", now=scenario)
    assert again.run_counts == rolled.run_counts


def test_page_links_numbers_to_their_rows(client, scenario, owner):
    client.force_login(owner)
    response = client.get(reverse("console_dashboard") + "?window=24h")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<svg" in page and "kozea.github.io" not in page
    board = response.context["board"]
    dead = metric(board.runs, "Dead (needs a person)")
    assert dead.url and dead.url in page.replace("&amp;", "&")
    listing = client.get(dead.url)
    assert listing.status_code == 200  # the admin accepted every filter of the link
    assert listing.context["cl"].result_count == dead.value
    failed = metric(board.webhooks, "Failed deliveries")
    assert client.get(failed.url).context["cl"].result_count == failed.value - 2  # minus rejected


def test_support_agent_sees_a_reduced_view_and_cannot_retry(client, scenario, support_agent):
    client.force_login(support_agent)
    response = client.get(reverse("console_dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Failed payments" not in page and "Last reconciliation" not in page
    assert "Tickets opened" in page and "Retry selected runs" not in page
    run = HandlerRun.objects.filter(status="dead").first()
    client.post(reverse("console_dashboard"), {"action": "retry_runs", "run": [run.pk]})
    run.refresh_from_db()
    assert run.status == "dead"


def test_finance_admin_retries_a_dead_run_from_the_page(client, scenario, finance_admin):
    client.force_login(finance_admin)
    run = HandlerRun.objects.filter(status="dead").first()
    response = client.post(reverse("console_dashboard"), {"action": "retry_runs", "run": [run.pk]})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "pending"
    assert (
        AuditEntry.objects.filter(action="billing.handler.replayed", actor=finance_admin).count()
        == 1
    )


@pytest.mark.parametrize("bad", ["²", "9" * 5000, "abc"])
def test_a_posted_id_that_is_not_an_id_gets_a_clear_message(client, scenario, finance_admin, bad):
    client.force_login(finance_admin)
    run = HandlerRun.objects.filter(status="dead").first()
    response = client.post(
        reverse("console_dashboard"), {"action": "retry_runs", "run": [run.pk, bad]}, follow=True
    )
    assert response.status_code == 200
    assert "Unknown run" in response.content.decode()
    run.refresh_from_db()
    assert run.status == "dead"  # nothing was done


def test_alert_is_listed_and_acknowledged_with_an_audit_entry(client, owner, support_agent):
    alert = Alert.objects.create(key="outbox_dead", title="2 downstream deliveries are dead")
    client.force_login(support_agent)
    client.post(reverse("console_dashboard"), {"action": "acknowledge_alert", "alert": [alert.pk]})
    alert.refresh_from_db()
    assert alert.state == "open"
    client.force_login(owner)
    page = client.get(reverse("console_dashboard")).content.decode()
    assert "2 downstream deliveries are dead" in page
    client.post(reverse("console_dashboard"), {"action": "acknowledge_alert", "alert": [alert.pk]})
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by) == ("acknowledged", owner)
    assert AuditEntry.objects.filter(action="alerts.alert.acknowledged", actor=owner).count() == 1


def test_alerts_are_listed_only_for_viewers_who_may_see_alerts(
    client, finance_admin, support_agent
):
    Alert.objects.create(key="refund:12", title="Refund #12 for 40.00 EUR not confirmed by Stripe")
    client.force_login(support_agent)
    response = client.get(reverse("console_dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Refund #12" not in page and "Alerts needing attention" not in page
    assert "No open alerts" not in page  # not told "none" either: the list is not theirs
    client.force_login(finance_admin)
    page = client.get(reverse("console_dashboard")).content.decode()
    assert "Refund #12 for 40.00 EUR not confirmed by Stripe" in page


def test_dashboard_needs_a_staff_login(client):
    response = client.get(reverse("console_dashboard"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
