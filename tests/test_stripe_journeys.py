"""Customer journeys against localstripe, PostgreSQL and Redis: real webhooks, real workers.

localstripe creates the objects and sends its events (captured by a relay and posted to
our webhook view byte for byte, signature included). What localstripe never sends
(renewal failures, ``invoice.paid``, ``customer.subscription.updated`` ...) is built from
Stripe's example shapes around the real ids (devkit.stripe_events) and signed as
Stripe signs. Workers run in burst mode (``drain``); nothing sleeps waiting for work.

Stripe's ``created`` has one-second resolution and the projection treats two different
states from the same second as ambiguous (it re-reads Stripe). localstripe cannot hold
the states we synthesize (past_due after a renewal failure), so each synthesized step
gets its own second, after the last one applied: ``_clock_past`` polls the wall clock
(bounded) for that, it does not wait for work.
"""

from __future__ import annotations

import io
import random
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest
import stripe
from django.core.management import call_command
from django.core.management.base import CommandError
from djstripe import models as dj

from billing.adapters import stripe_client
from billing.models import HandlerRun, RunStatus, StripeEvent
from customers.models import Customer
from devkit import stripe_events as events
from tests.stripe_support.fixtures import drain
from tests.stripe_support.objects import card as _card
from tests.stripe_support.objects import plan as _plan
from tests.stripe_support.objects import snap as _snap
from tests.stripe_support.objects import subscriber as _subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# localstripe: attaches fine, every charge is declined (PaymentMethod._charging_is_declined).
CARD_DECLINES_CHARGES = "4000000000000341"

P, M, CRM, HELP, NOTIFY = (
    "customer_projection",
    "stripe_mirror",
    "crm_update",
    "helpdesk_ticket",
    "customer_notification",
)
ENT = "entitlement_update"
# A one-time payment may be a marketplace order: order_webhooks looks (and sends nothing
# for a subscription's payment).
ORD = "order_webhooks"
ALL = {P, M, CRM, HELP, NOTIFY, ENT}
# The handler runs each event type fans out into with the mirror on (README's status map).
EXPECTED_RUNS: dict[str, set[str]] = {
    "customer.created": {P, M, CRM},
    "customer.updated": {P, M, CRM},
    "customer.subscription.created": {P, M, CRM, ENT},
    "customer.subscription.updated": ALL,
    "customer.subscription.deleted": ALL,
    "invoice.paid": ALL,
    "invoice.payment_succeeded": ALL,
    "invoice.payment_failed": ALL,
    "payment_intent.succeeded": {P, M, ORD},
    "payment_intent.payment_failed": {P, M, HELP},
}


# --- helpers ----------------------------------------------------------------------------


def _canonical(stripe_customer_id: str) -> Customer:
    return Customer.objects.get(stripe_customer_id=stripe_customer_id)


def _clock_past(ts: int, *, bound: float = 3.0) -> int:
    """Poll the wall clock until it is past second ``ts`` (bounded); returns the new second.
    Waiting for time to move on, not for work: see the module docstring."""
    deadline = time.monotonic() + bound
    while int(time.time()) <= ts:
        assert time.monotonic() < deadline, "the clock did not move"
        time.sleep(0.01)
    return int(time.time())


def _last_applied(stripe_customer_id: str) -> int:
    customer = _canonical(stripe_customer_id)
    stamps = [
        customer.last_event_created,
        customer.payment_event_created,
        customer.profile_event_created,
    ]
    return max(int(s.timestamp()) for s in stamps if s)


def _runs(event_ids: Iterable[str]) -> dict[str, tuple[str, dict[str, str]]]:
    """event id -> (type, {handler: status}) for the stored events."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for event in StripeEvent.objects.filter(stripe_id__in=list(event_ids)):
        out[event.stripe_id] = (
            event.type,
            dict(HandlerRun.objects.filter(event=event).values_list("handler", "status")),
        )
    return out


def _assert_step_runs(event_ids: Iterable[str], *, must_include: Iterable[str]) -> None:
    """Every event of the step was stored once, fanned out into the handler runs the
    status map names, and every run succeeded."""
    event_ids = list(event_ids)
    runs = _runs(event_ids)
    assert set(runs) == set(event_ids), "some deliveries were not stored"
    assert set(must_include) <= {t for t, _ in runs.values()}
    for event_id, (event_type, by_handler) in runs.items():
        assert set(by_handler) == EXPECTED_RUNS.get(event_type, set()), (event_type, by_handler)
        failed = {h: s for h, s in by_handler.items() if s != RunStatus.SUCCEEDED}
        assert not failed, (
            event_type,
            failed,
            list(
                HandlerRun.objects.filter(event__stripe_id=event_id)
                .exclude(status=RunStatus.SUCCEEDED)
                .values_list("handler", "last_error")
            ),
        )


def _subscription_event(
    event_type: str,
    customer: Any,
    subscription: Any,
    plan: Any,
    *,
    status: str,
    created: int,
    latest_invoice: str | None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A subscription event Stripe would send, from Stripe's example shape around the
    real customer, subscription, plan and product."""
    obj = events.subscription(
        customer.id,
        status=status,
        sub_id=subscription.id,
        plan_id=plan.id,
        amount=plan.amount,
        nickname=plan.nickname,
        product=plan.product,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        latest_invoice=latest_invoice,
        cancel_at_period_end=bool(subscription.cancel_at_period_end),
        item_id=subscription["items"].data[0].id,
    )
    return events.event(event_type, obj, created=created, previous_attributes=previous)


def _invoice_event(
    event_type: str,
    customer: Any,
    subscription: Any,
    invoice_id: str,
    *,
    status: str,
    created: int,
    amount: int,
    billing_reason: str = "subscription_cycle",
) -> dict[str, Any]:
    obj = events.invoice(
        customer.id,
        subscription_id=subscription.id,
        status=status,
        invoice_id=invoice_id,
        amount=amount,
        billing_reason=billing_reason,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
    )
    return events.event(event_type, obj, created=created)


# --- 1. the subscription journey ---------------------------------------------------------


def test_subscription_journey_active_past_due_active_canceled(localstripe_webhooks, webhook):
    plan = _plan()
    customer, subscription, _ = _subscriber("ada@example.test", plan)

    # Subscribed: localstripe invoices, charges and activates, and says so.
    step = localstripe_webhooks.receive(
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.payment_succeeded",
            "payment_intent.succeeded",
        ]
    )
    drain()
    ada = _canonical(customer.id)
    assert (ada.status, ada.plan_id, ada.plan_name) == ("active", plan.id, "Pro")
    assert int(ada.current_period_end.timestamp()) == subscription.current_period_end
    assert ada.subscription_id == subscription.id
    # Paid, not provisioned: no product endpoint here, so onboarding waits for the product.
    assert (ada.email, ada.last_payment_status, ada.onboarding_state) == (
        "ada@example.test",
        "succeeded",
        "pending_provisioning",
    )
    _assert_step_runs(
        [d.id for d in step],
        must_include=[
            "customer.created",
            "customer.subscription.created",
            "invoice.payment_succeeded",
        ],
    )

    # The renewal fails. localstripe has no renewals: the renewal invoice is created in
    # localstripe (a real id), the failure and the subscription update are built.
    renewal = stripe.Invoice.create(customer=customer.id, subscription=subscription.id)
    t_failed = _clock_past(_last_applied(customer.id))
    failed = [
        _invoice_event(
            "invoice.payment_failed",
            customer,
            subscription,
            renewal.id,
            status="open",
            created=t_failed,
            amount=plan.amount,
        ),
        _subscription_event(
            "customer.subscription.updated",
            customer,
            subscription,
            plan,
            status="past_due",
            created=t_failed,
            latest_invoice=renewal.id,
            previous={"status": "active"},
        ),
    ]
    for event in failed:
        assert webhook.post(event).status_code == 200
    drain()
    ada.refresh_from_db()
    assert (ada.status, ada.onboarding_state, ada.last_payment_status) == (
        "past_due",
        "pending_provisioning",
        "failed",
    )
    assert ada.latest_invoice_id == renewal.id
    _assert_step_runs([e["id"] for e in failed], must_include=["invoice.payment_failed"])

    # Paid on retry: the invoice is paid and the subscription is active again.
    t_paid = _clock_past(t_failed)
    paid = [
        _invoice_event(
            "invoice.paid",
            customer,
            subscription,
            renewal.id,
            status="paid",
            created=t_paid,
            amount=plan.amount,
        ),
        _subscription_event(
            "customer.subscription.updated",
            customer,
            subscription,
            plan,
            status="active",
            created=t_paid,
            latest_invoice=renewal.id,
            previous={"status": "past_due"},
        ),
    ]
    for event in reversed(paid):  # order does not matter within the second
        assert webhook.post(event).status_code == 200
    drain()
    ada.refresh_from_db()
    assert (ada.status, ada.onboarding_state, ada.last_payment_status) == (
        "active",
        "pending_provisioning",
        "succeeded",
    )
    _assert_step_runs([e["id"] for e in paid], must_include=["invoice.paid"])

    # Canceled through the API: localstripe sends customer.subscription.deleted.
    _clock_past(t_paid)
    stripe.Subscription.cancel(subscription.id)
    step = localstripe_webhooks.receive(["customer.subscription.deleted"])
    drain()
    ada.refresh_from_db()
    assert ada.status == "canceled"
    assert ada.subscription_id == subscription.id
    _assert_step_runs([d.id for d in step], must_include=["customer.subscription.deleted"])
    assert Customer.objects.count() == 1


# --- 2. a card that attaches but never pays ------------------------------------------------


def test_failing_card_leaves_the_subscription_incomplete(localstripe_webhooks, webhook):
    plan = _plan()
    customer, subscription, pm = _subscriber(
        "grace@example.test", plan, card_number=CARD_DECLINES_CHARGES
    )
    assert subscription.status == "incomplete"  # localstripe: the first charge was declined

    step = localstripe_webhooks.receive(["customer.created", "customer.subscription.created"])
    drain()
    grace = _canonical(customer.id)
    assert (grace.status, grace.onboarding_state) == ("incomplete", "pending_provisioning")
    assert grace.plan_id == plan.id
    _assert_step_runs([d.id for d in step], must_include=["customer.subscription.created"])

    # Retrying the payment with the same card: localstripe declines it and sends
    # payment_intent.payment_failed.
    with pytest.raises(stripe.CardError):
        stripe.PaymentIntent.create(
            amount=plan.amount,
            currency="usd",
            customer=customer.id,
            payment_method=pm.id,
            confirm=True,
        )
    retry = localstripe_webhooks.receive(["payment_intent.payment_failed"])
    # Stripe also reports the first invoice's failure; localstripe does not.
    first_invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    assert first_invoice.status == "open"
    drain()
    failed = _invoice_event(
        "invoice.payment_failed",
        customer,
        subscription,
        first_invoice.id,
        status="open",
        amount=plan.amount,
        billing_reason="subscription_create",
        created=_clock_past(_last_applied(customer.id)),
    )
    assert webhook.post(failed).status_code == 200
    drain()

    grace.refresh_from_db()
    assert (grace.status, grace.onboarding_state, grace.last_payment_status) == (
        "incomplete",
        "pending_provisioning",
        "failed",
    )
    assert grace.latest_invoice_id == first_invoice.id
    _assert_step_runs(
        [d.id for d in retry] + [failed["id"]],
        must_include=["payment_intent.payment_failed", "invoice.payment_failed"],
    )
    # A failed payment raises a helpdesk run and a customer notification run, once each.
    assert HandlerRun.objects.filter(handler=HELP, status=RunStatus.SUCCEEDED).count() == 2
    assert HandlerRun.objects.filter(handler=NOTIFY, status=RunStatus.SUCCEEDED).count() == 1


# --- 3. 200 events, shuffled, with duplicates ----------------------------------------------


def _journey(kind: str, n: int, plans: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Drive one customer through localstripe; returns its ten events in true order:
    (type, object state at that moment). Types localstripe does not send are
    synthesized around the real objects."""
    pm = _card()
    customer = stripe.Customer.create(
        email=f"{kind}{n}@example.test",
        name=f"{kind} {n}",
        payment_method=pm.id,
        invoice_settings={"default_payment_method": pm.id},
    )
    sub = stripe.Subscription.create(customer=customer.id, items=[{"plan": plans["basic"].id}])
    first_invoice = stripe.Invoice.retrieve(sub.latest_invoice)
    out = [
        ("customer.created", _snap(customer)),
        ("customer.subscription.created", _snap(sub)),
        ("invoice.payment_succeeded", _snap(first_invoice)),
        (
            "payment_intent.succeeded",
            _snap(stripe.PaymentIntent.retrieve(first_invoice.payment_intent)),
        ),
    ]
    item = sub["items"].data[0].id

    if kind == "past_due":
        bad = _card(CARD_DECLINES_CHARGES)
        stripe.PaymentMethod.attach(bad.id, customer=customer.id)
        out.append(
            (
                "customer.updated",
                _snap(
                    stripe.Customer.modify(
                        customer.id, invoice_settings={"default_payment_method": bad.id}
                    )
                ),
            )
        )
        # A new interval invoices at once; the charge is declined: localstripe's own
        # past_due.
        sub = stripe.Subscription.modify(sub.id, items=[{"id": item, "plan": plans["yearly"].id}])
        assert sub.status == "past_due"
        invoice = stripe.Invoice.retrieve(sub.latest_invoice)
        out += [
            ("invoice.created", _snap(invoice)),
            ("invoice.finalized", _snap(invoice)),
            (
                "payment_intent.payment_failed",
                _snap(stripe.PaymentIntent.retrieve(invoice.payment_intent)),
            ),
            ("invoice.payment_failed", _snap(invoice)),
            ("customer.subscription.updated", _snap(sub)),
        ]
        return out

    out.append(
        ("customer.updated", _snap(stripe.Customer.modify(customer.id, name=f"{kind} {n} renamed")))
    )
    if kind == "recovered":
        renewal = stripe.Invoice.create(customer=customer.id, subscription=sub.id)
        sub = stripe.Subscription.retrieve(sub.id)
        out += [
            ("invoice.created", _snap(renewal)),
            ("invoice.payment_failed", _snap(renewal, status="open", attempted=True)),
            ("customer.subscription.updated", _snap(sub, status="past_due")),
            ("invoice.paid", _snap(renewal, status="paid", attempted=True)),
            ("customer.subscription.updated", _snap(sub)),
        ]
    elif kind == "canceled":
        sub = stripe.Subscription.modify(sub.id, cancel_at_period_end=True)
        renewal = stripe.Invoice.create(customer=customer.id, subscription=sub.id)
        out += [
            ("customer.subscription.updated", _snap(sub)),
            ("invoice.created", _snap(renewal)),
            ("invoice.payment_failed", _snap(renewal, status="open", attempted=True)),
            (
                "customer.subscription.updated",
                _snap(sub, status="past_due", latest_invoice=renewal.id),
            ),
            ("customer.subscription.deleted", _snap(stripe.Subscription.cancel(sub.id))),
        ]
    elif kind == "plan_change":
        sub = stripe.Subscription.modify(sub.id, items=[{"id": item, "plan": plans["pro"].id}])
        renewal = stripe.Invoice.create(customer=customer.id, subscription=sub.id)
        paid = stripe.Invoice.pay(renewal.id)  # a real payment in localstripe
        out += [
            ("customer.subscription.updated", _snap(sub)),
            ("invoice.created", _snap(renewal)),
            ("payment_intent.succeeded", _snap(stripe.PaymentIntent.retrieve(paid.payment_intent))),
            ("invoice.payment_succeeded", _snap(paid)),
            ("invoice.paid", _snap(paid)),
        ]
    elif kind == "cancel_at_period_end":
        renewal = stripe.Invoice.create(customer=customer.id, subscription=sub.id)
        sub = stripe.Subscription.retrieve(sub.id)
        out += [
            ("invoice.created", _snap(renewal)),
            ("invoice.payment_failed", _snap(renewal, status="open", attempted=True)),
            ("customer.subscription.updated", _snap(sub, status="past_due")),
            ("invoice.paid", _snap(renewal, status="paid", attempted=True)),
            (
                "customer.subscription.updated",
                _snap(stripe.Subscription.modify(sub.id, cancel_at_period_end=True)),
            ),
        ]
    return out


KINDS = ("recovered", "canceled", "plan_change", "cancel_at_period_end", "past_due")


def test_200_shuffled_events_with_duplicates_end_in_stripes_state(stripe_api, webhook, caplog):
    rng = random.Random(20261122)
    plans = {
        "basic": _plan("plan_basic", 900, name="Basic"),
        "pro": _plan(),
        "yearly": _plan("plan_pro_yearly", 20000, "year", "Pro yearly"),
    }
    built: list[dict[str, Any]] = []
    customers: list[str] = []
    base = int(time.time()) - 3600
    for n in range(20):
        steps = _journey(KINDS[n % len(KINDS)], n, plans)
        assert len(steps) == 10
        customers.append(steps[0][1]["id"])
        # Stripe's true order, one second apart (no same-second ambiguity to resolve).
        built += [
            events.event(event_type, obj, created=base + i)
            for i, (event_type, obj) in enumerate(steps)
        ]
    assert len(built) == 200

    deliveries = built + rng.sample(built, 40)  # 20% delivered twice
    rng.shuffle(deliveries)
    answers = Counter(webhook.post(event).status_code for event in deliveries)
    assert answers == {200: 240}
    calls, endpoints = _drain_counting(caplog)
    print(
        f"\n200 shuffled events of 20 new customers: {calls} Stripe API calls "
        f"({calls / 200:.2f} per event; each event has its own second, so the projection "
        f"re-reads nothing: all are dj-stripe's fetches): {dict(endpoints)}"
    )

    assert StripeEvent.objects.count() == 200
    assert sum(StripeEvent.objects.values_list("delivery_count", flat=True)) == 240
    assert not HandlerRun.objects.filter(handler=P).exclude(status=RunStatus.SUCCEEDED).exists()
    assert HandlerRun.objects.filter(handler=P).count() == sum(
        1 for e in built if e["type"] in EXPECTED_RUNS
    )
    assert Customer.objects.count() == 20

    seen: Counter[str] = Counter()
    plan_drift = []
    for stripe_customer_id in customers:
        truth = stripe.Subscription.list(customer=stripe_customer_id, status="all").data[0]
        ours = _canonical(stripe_customer_id)
        assert (ours.status, ours.cancel_at_period_end) == (
            truth.status,
            truth.cancel_at_period_end,
        ), (ours.email, stripe_customer_id)
        seen[ours.status] += 1
        if (ours.plan_id, ours.subscription_id) != (truth["items"].data[0].plan.id, truth.id):
            plan_drift.append(
                (
                    ours.email,
                    ours.plan_id,
                    truth["items"].data[0].plan.id,
                    StripeEvent.objects.get(stripe_id=ours.last_event_id).type,
                )
            )
    assert seen == {"active": 12, "canceled": 4, "past_due": 4}
    assert plan_drift == []


# --- 4. the dj-stripe mirror against localstripe, and what it costs in API calls ----------


def _drain_counting(caplog: pytest.LogCaptureFixture) -> tuple[int, Counter[str]]:
    """Drain the queue; returns the Stripe API calls made meanwhile and their endpoints."""
    caplog.clear()
    before = stripe_client.api_calls.total
    with caplog.at_level("INFO", logger="stripe"):
        drain()
    endpoints: Counter[str] = Counter()
    for record in caplog.records:
        message = record.getMessage()
        if record.name == "stripe" and "Request to Stripe api" in message:
            path = message.split("url=", 1)[-1].split("?", 1)[0].split("/v1/", 1)[-1]
            endpoints["GET /v1/" + path.split("/", 1)[0]] += 1
    return stripe_client.api_calls.total - before, endpoints


def test_djstripe_mirror_against_localstripe_and_api_calls_per_event(
    localstripe_webhooks, webhook, caplog
):
    plan = _plan()
    people = [_subscriber(f"user{i}@example.test", plan) for i in range(3)]

    # New customers: their first events (customer, subscription, first invoice, payment).
    wanted = {
        "customer.created": 3,
        "customer.subscription.created": 3,
        "invoice.payment_succeeded": 3,
        "payment_intent.succeeded": 3,
    }
    first = localstripe_webhooks.receive(wanted)
    calls_new, endpoints_new = _drain_counting(caplog)
    mapped_new = sum(1 for d in first if d.type in EXPECTED_RUNS)
    _assert_step_runs([d.id for d in first], must_include=wanted)

    # Known customers: a failed renewal, its recovery, then a cancellation in localstripe.
    known_ids: list[str] = []
    calls_known = 0
    endpoints_known: Counter[str] = Counter()
    renewals = {c.id: stripe.Invoice.create(customer=c.id, subscription=s.id) for c, s, _ in people}
    t = _clock_past(max(_last_applied(c.id) for c, _, _ in people))
    for status, invoice_status, invoice_type in (
        ("past_due", "open", "invoice.payment_failed"),
        ("active", "paid", "invoice.paid"),
    ):
        batch = []
        for customer, subscription, _ in people:
            renewal = renewals[customer.id].id
            batch += [
                _invoice_event(
                    invoice_type,
                    customer,
                    subscription,
                    renewal,
                    status=invoice_status,
                    created=t,
                    amount=plan.amount,
                ),
                _subscription_event(
                    "customer.subscription.updated",
                    customer,
                    subscription,
                    plan,
                    status=status,
                    created=t,
                    latest_invoice=renewal,
                ),
            ]
        for event in batch:
            assert webhook.post(event).status_code == 200
        calls, endpoints = _drain_counting(caplog)
        calls_known += calls
        endpoints_known += endpoints
        known_ids += [e["id"] for e in batch]
        t = _clock_past(t)
    for _, subscription, _ in people:
        stripe.Subscription.cancel(subscription.id)
    deleted = localstripe_webhooks.receive({"customer.subscription.deleted": 3})
    calls, endpoints = _drain_counting(caplog)
    calls_known += calls
    endpoints_known += endpoints
    known_ids += [d.id for d in deleted]
    _assert_step_runs(
        known_ids,
        must_include=["invoice.payment_failed", "invoice.paid", "customer.subscription.deleted"],
    )
    mapped_known = sum(1 for d in deleted if d.type in EXPECTED_RUNS) + 12

    # The mirror holds every object of the journey, linked as in Stripe.
    ids = [c.id for c, _, _ in people]
    assert dj.Customer.objects.filter(id__in=ids).count() == 3
    for customer, subscription, _ in people:
        mirrored = dj.Subscription.objects.get(id=subscription.id)
        assert (mirrored.customer_id, mirrored.status) == (customer.id, "canceled")
        assert dj.SubscriptionItem.objects.filter(subscription=mirrored).count() == 1
        assert dj.Invoice.objects.filter(customer_id=customer.id).count() == 2
        assert dj.PaymentIntent.objects.filter(customer_id=customer.id).count() == 1
        assert _canonical(customer.id).status == "canceled"
        assert dj.SubscriptionItem.objects.get(subscription=mirrored).price.id == plan.id
    assert dj.Price.objects.filter(id=plan.id, product__id=plan.product).exists()
    # The API key's account came from the pre-created rows: no GET /v1/account.
    assert dj.Account.objects.count() == 1
    assert "GET /v1/account" not in endpoints_new + endpoints_known

    per_new, per_known = calls_new / mapped_new, calls_known / mapped_known
    rereads = HandlerRun.objects.filter(handler=P, note__contains="re-read").count()
    print(
        f"\nStripe API calls per event: new customers {per_new:.2f} ({calls_new} calls / "
        f"{mapped_new} events, {rereads} of them the projection's same-second re-reads: "
        f"{dict(endpoints_new)}); known customers {per_known:.2f} ({calls_known} calls / "
        f"{mapped_known} events: {dict(endpoints_known)})"
    )
    # Budgets: a new customer costs a few fetches of related objects once; a known
    # customer's events are mirrored from their snapshots.
    assert per_new <= 2.0
    assert per_known <= 0.5


# --- out-of-order deliveries that once regressed state ---------------------------------------


def _deliver_reversed(webhook, built: list[dict[str, Any]]) -> None:
    for event in reversed(built):
        assert webhook.post(event).status_code == 200
    drain()


def test_plan_change_survives_a_newer_invoice_event(stripe_api, webhook):
    basic, pro = _plan("plan_basic", 900, name="Basic"), _plan()
    customer, subscription, _ = _subscriber("olga@example.test", basic)
    item = subscription["items"].data[0].id
    changed = stripe.Subscription.modify(subscription.id, items=[{"id": item, "plan": pro.id}])
    renewal = stripe.Invoice.pay(
        stripe.Invoice.create(customer=customer.id, subscription=subscription.id).id
    )
    t = int(time.time()) - 60
    _deliver_reversed(
        webhook,
        [
            events.event("customer.subscription.created", _snap(subscription), created=t),
            events.event("customer.subscription.updated", _snap(changed), created=t + 1),
            events.event("invoice.paid", _snap(renewal), created=t + 2),
        ],
    )
    olga = _canonical(customer.id)
    assert (olga.status, olga.plan_id, olga.subscription_id) == ("active", pro.id, subscription.id)


def test_mirror_keeps_the_newest_snapshot(stripe_api, webhook):
    customer, subscription, _ = _subscriber("lin@example.test", _plan())
    flagged = stripe.Subscription.modify(subscription.id, cancel_at_period_end=True)
    t = int(time.time()) - 60
    _deliver_reversed(
        webhook,
        [
            events.event("customer.subscription.created", _snap(subscription), created=t),
            events.event("customer.subscription.updated", _snap(flagged), created=t + 1),
        ],
    )
    assert _canonical(customer.id).cancel_at_period_end is True  # the projection is right
    assert dj.Subscription.objects.get(id=subscription.id).cancel_at_period_end is True


# --- the demo seed command ----------------------------------------------------------------


def test_demo_seed_refuses_the_real_stripe(settings):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    with pytest.raises(CommandError, match="the real Stripe"):
        call_command("demo_stripe_seed", stdout=io.StringIO())
    assert not Customer.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_demo_seed_seeds_every_journey_once(stripe_api):
    out = io.StringIO()
    call_command("demo_stripe_seed", "--customers", "6", "--process", stdout=out)
    report = out.getvalue()
    assert "Seeding customers [" in report and "Delivering events [" in report
    assert "Seeded 6 customer(s) in localstripe." in report

    by_journey = {c.email.split("@")[0]: c for c in Customer.objects.all()}
    states = {name: (c.status, c.last_payment_status) for name, c in by_journey.items()}
    assert states == {
        "ada.lovelace": ("active", "succeeded"),  # active
        "grace.hopper": ("trialing", "none"),  # trialing
        "alan.turing": ("active", "succeeded"),  # failed, then recovered
        "katherine.johnson": ("canceled", "succeeded"),  # canceled
        "edsger.dijkstra": ("active", "partially_refunded"),  # partially refunded
        "barbara.liskov": ("disputed", "disputed"),  # disputed
    }
    assert not HandlerRun.objects.exclude(status=RunStatus.SUCCEEDED).exists()

    again = io.StringIO()
    call_command("demo_stripe_seed", "--customers", "6", "--process", stdout=again)
    assert "6 already there, skipped" in again.getvalue()
    assert Customer.objects.count() == 6
