"""stripe_webhook_setup, stripe_events replay, customer_state, run_scheduler --once."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase
from djstripe.models import WebhookEndpoint

from audit import codes
from audit.models import AuditEntry
from billing import handlers
from billing.models import HandlerRun, RunStatus
from customers.models import Customer
from devkit import stripe_events as events
from tests.stripe_support.fixtures import drain

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    """Run a command as its own process would: its commits (and on-commit jobs) happen."""
    out, err = io.StringIO(), io.StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_webhook_setup_creates_then_updates_one_endpoint_and_prints_the_url_last(settings):
    out, _ = run("stripe_webhook_setup", "--base-url", "http://127.0.0.1:8000")
    endpoint = WebhookEndpoint.objects.get()
    assert (
        out.strip().splitlines()[-1]
        == f"http://127.0.0.1:8000/stripe/webhook/{endpoint.djstripe_uuid}/"
    )
    assert endpoint.secret == settings.STRIPE_WEBHOOK_SECRET
    out, _ = run("stripe_webhook_setup", "--base-url", "https://console.example.com/")
    assert WebhookEndpoint.objects.count() == 1
    assert (
        out.strip().splitlines()[-1]
        == f"https://console.example.com/stripe/webhook/{endpoint.djstripe_uuid}/"
    )
    with pytest.raises(CommandError, match="http"):
        run("stripe_webhook_setup", "--base-url", "console.example.com")


def test_replay_failed_reruns_only_what_failed_and_never_duplicates(webhook, monkeypatch, settings):
    settings.HANDLER_MAX_ATTEMPTS = 1
    monkeypatch.setitem(
        handlers.HANDLERS,
        "crm_update",
        lambda e: (_ for _ in ()).throw(ConnectionError("CRM down")),
    )
    event = events.event("customer.created", events.customer(email="replay@example.test"))
    webhook.post(event)
    drain()
    assert HandlerRun.objects.get(handler="crm_update").status == RunStatus.DEAD

    monkeypatch.setitem(handlers.HANDLERS, "crm_update", lambda e: "CRM updated")
    out, err = run("stripe_events", "replay", "--failed", "--reason", "CRM is back")
    assert "Replayed 1 event(s)" in out
    assert "replaying [" in err  # progress bar
    drain()
    runs = {r.handler: r for r in HandlerRun.objects.all()}
    assert runs["crm_update"].status == RunStatus.SUCCEEDED
    assert runs["customer_projection"].attempts == 1  # not re-run
    assert Customer.objects.count() == 1
    entry = AuditEntry.objects.get(action=codes.BILLING_EVENT_REPLAYED)
    assert entry.actor is None and entry.data["reason"] == "CRM is back"

    out, _ = run("stripe_events", "replay", "--failed")
    assert "nothing replayed" in out


def test_replay_by_ids_type_and_since(webhook):
    a = events.event("customer.created", events.customer())
    b = events.event("customer.updated", events.customer())
    webhook.post(a), webhook.post(b)
    drain()
    assert (
        "1 event(s) would be replayed"
        in run("stripe_events", "replay", "--ids", a["id"], "--dry-run")[0]
    )
    assert (
        "1 event(s) would be replayed"
        in run("stripe_events", "replay", "--type", "customer.updated", "--dry-run")[0]
    )
    assert (
        "2 event(s) would be replayed"
        in run("stripe_events", "replay", "--since", "2000-01-01", "--dry-run")[0]
    )
    with pytest.raises(CommandError, match="unknown event id"):
        run("stripe_events", "replay", "--ids", "evt_nope")
    with pytest.raises(CommandError, match="Say what to replay"):
        run("stripe_events", "replay")
    with pytest.raises(CommandError, match="not an ISO date"):
        run("stripe_events", "replay", "--since", "yesterday")


def test_customer_state_json(webhook):
    cus = events.customer(email="state@example.test")
    webhook.post(events.event("customer.created", cus))
    webhook.post(
        events.event(
            "customer.subscription.created", events.subscription(cus["id"], status="trialing")
        )
    )
    drain()
    out, _ = run("customer_state", cus["id"], "--json")
    state = json.loads(out)
    assert state["customer"]["status"] == "trialing"
    assert state["customer"]["email"] == "state@example.test"
    assert {e["type"] for e in state["events"]} == {
        "customer.created",
        "customer.subscription.created",
    }
    assert {r["handler"] for r in state["handler_runs"]} >= {"customer_projection", "crm_update"}
    with pytest.raises(CommandError, match="No canonical customer"):
        run("customer_state", "cus_unknown", "--json")


def test_scheduler_once_sweeps(webhook):
    import django_rq

    event = events.event("customer.created", events.customer())
    webhook.post(event)
    django_rq.get_queue("webhooks").empty()
    from billing.models import StripeEvent

    StripeEvent.objects.update(received_at=StripeEvent.objects.get().received_at.replace(year=2020))
    out, _ = run("run_scheduler", "--once")
    assert "sweep: {'events': 1" in out
    drain()
    assert Customer.objects.count() == 1


def test_admin_replay_action_is_for_replayers_and_audited(
    webhook, client, finance_admin, support_agent, monkeypatch, settings
):
    settings.HANDLER_MAX_ATTEMPTS = 1
    monkeypatch.setitem(
        handlers.HANDLERS,
        "crm_update",
        lambda e: (_ for _ in ()).throw(ConnectionError("CRM down")),
    )
    webhook.post(events.event("customer.created", events.customer()))
    drain()
    run_row = HandlerRun.objects.get(handler="crm_update")
    assert run_row.status == RunStatus.DEAD
    monkeypatch.setitem(handlers.HANDLERS, "crm_update", lambda e: "CRM updated")

    client.force_login(support_agent)
    response = client.post(
        "/admin/billing/handlerrun/", {"action": "retry_runs", "_selected_action": [run_row.pk]}
    )
    assert response.status_code == 403
    client.force_login(finance_admin)
    page = client.get("/admin/billing/handlerrun/")
    assert b"retry_runs" in page.content
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            "/admin/billing/handlerrun/", {"action": "retry_runs", "_selected_action": [run_row.pk]}
        )
    assert response.status_code == 302
    drain()
    run_row.refresh_from_db()
    assert run_row.status == RunStatus.SUCCEEDED
    entry = AuditEntry.objects.get(action=codes.BILLING_HANDLER_REPLAYED)
    assert entry.actor == finance_admin and entry.data["before"] == "dead"
