"""Reconcile against localstripe: drift made behind the console's back is found by category,
left alone without --repair, and fixed (audited, as the system) with --repair."""

from __future__ import annotations

import io
import time

import stripe
from django.core.management import call_command

from audit import codes
from audit.models import AuditEntry
from billing.models import ReconcileRun
from customers.models import Customer, MatchState
from devkit import stripe_events as events
from tests.stripe_support.fixtures import drain
from tests.stripe_support.objects import plan as _plan
from tests.stripe_support.objects import snap as _snap
from tests.stripe_support.objects import subscriber as _subscriber


def _reconcile(*args: str) -> tuple[ReconcileRun, str]:
    out = io.StringIO()
    call_command("reconcile", *args, stdout=out, stderr=io.StringIO())
    return ReconcileRun.objects.order_by("-pk").first(), out.getvalue()


def _drift(run: ReconcileRun) -> set[tuple[str, str]]:
    return {(item["category"], item["stripe_customer_id"]) for item in run.details}


def test_reconcile_finds_drift_behind_the_consoles_back_and_repair_fixes_it(stripe_api, webhook):
    basic, pro = _plan("plan_basic", 900, name="Basic"), _plan()
    t = int(time.time()) - 600
    subscribers = {}
    for i, email in enumerate(("ann@example.test", "bob@example.test", "cy@example.test")):
        customer, subscription, _ = _subscriber(email, basic)
        subscribers[email] = (customer, subscription)
        assert (
            webhook.post(
                events.event("customer.created", _snap(customer), created=t + 3 * i)
            ).status_code
            == 200
        )
        assert (
            webhook.post(
                events.event(
                    "customer.subscription.created", _snap(subscription), created=t + 3 * i + 1
                )
            ).status_code
            == 200
        )
    drain()
    ann, bob, cy = (
        subscribers[e][0].id for e in ("ann@example.test", "bob@example.test", "cy@example.test")
    )
    clean, _ = _reconcile()
    assert clean.drift_total == 0, clean.details

    # Behind the console's back: a hand edit, a plan change whose webhook never came, a
    # Stripe customer the console never heard of, a local record Stripe does not know.
    Customer.objects.filter(stripe_customer_id=ann).update(status="past_due")
    bob_sub = subscribers["bob@example.test"][1]
    stripe.Subscription.modify(
        bob_sub.id, items=[{"id": bob_sub["items"].data[0].id, "plan": pro.id}]
    )
    dana = stripe.Customer.create(email="dana@example.test", name="Dana")
    ghost = Customer.objects.create(email="ghost@example.test", stripe_customer_id="cus_ghost0000")

    run, report = _reconcile()
    assert {
        ("status_mismatch", ann),
        ("plan_mismatch", bob),
        ("missing_locally", dana.id),
        ("unknown_locally", "cus_ghost0000"),
    } <= _drift(run)
    assert not {c for c, sid in _drift(run) if sid == cy}
    assert run.drift_counts["status_mismatch"] == 1 and run.drift_counts["missing_locally"] == 1
    assert "status_mismatch" in report and "missing_locally" in report
    # Without --repair nothing changes.
    assert Customer.objects.get(stripe_customer_id=ann).status == "past_due"
    assert not Customer.objects.filter(stripe_customer_id=dana.id).exists()
    assert not AuditEntry.objects.filter(action=codes.BILLING_RECONCILE_REPAIRED).exists()

    repaired, report = _reconcile("--repair")
    assert repaired.repair and "repaired" in report
    assert Customer.objects.get(stripe_customer_id=ann).status == "active"
    assert Customer.objects.get(stripe_customer_id=bob).plan_id == pro.id
    new = Customer.objects.get(stripe_customer_id=dana.id)
    assert (new.email, new.match_state) == ("dana@example.test", MatchState.LINKED_BY_STRIPE_ID)
    ghost.refresh_from_db()
    assert ghost.match_state == MatchState.CONFLICT and "cus_ghost0000" in ghost.review_reason
    fixes = AuditEntry.objects.filter(action=codes.BILLING_RECONCILE_REPAIRED)
    assert fixes.count() == 4 and not fixes.exclude(actor=None).exists()

    after, _ = _reconcile()
    # Only the local record Stripe does not know stays (flagged for a person, not deleted).
    assert _drift(after) == {("unknown_locally", "cus_ghost0000")}
