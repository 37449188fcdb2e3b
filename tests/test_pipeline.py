"""Processing: the status map on the canonical customer, never regressing, exactly once."""

from __future__ import annotations

import time

import pytest

from billing.models import EventStatus, HandlerRun, RunStatus, StripeEvent
from customers.models import Customer, MatchState
from devkit import stripe_events as events
from tests.factories import CustomerFactory
from tests.stripe_support.fixtures import drain

pytestmark = pytest.mark.django_db


class World:
    """One Stripe customer with a subscription, and a clock for event times."""

    def __init__(self, webhook):
        self.webhook = webhook
        self.cus = events.customer(email="lin@example.test", name="Lin")
        self.sub_id = events.new_id("sub")
        self.clock = int(time.time()) - 3600

    def tick(self, seconds: int = 10) -> int:
        self.clock += seconds
        return self.clock

    def send(self, event_type: str, obj: dict, created: int | None = None, **kw) -> dict:
        event = events.event(event_type, obj, created=created or self.tick(), **kw)
        assert self.webhook.post(event).status_code == 200
        return event

    def sub(self, status: str, **kw) -> dict:
        return events.subscription(self.cus["id"], status=status, sub_id=self.sub_id, **kw)

    def customer(self) -> Customer:
        return Customer.objects.get(stripe_customer_id=self.cus["id"])


@pytest.fixture
def world(webhook):
    return World(webhook)


def test_subscription_journey_with_status_after_each_step(world):
    w = world
    w.send(
        "checkout.session.completed",
        {
            **events.example("checkout.session"),
            "customer": w.cus["id"],
            "subscription": w.sub_id,
            "payment_status": "paid",
            "customer_details": {"email": "lin@example.test"},
        },
    )
    w.send("customer.created", w.cus)
    w.send("customer.subscription.created", w.sub("active", plan_id="plan_pro", amount=2000))
    inv1 = events.invoice(
        w.cus["id"], subscription_id=w.sub_id, status="paid", billing_reason="subscription_create"
    )
    w.send("invoice.paid", inv1)
    drain()
    c = w.customer()
    # Paid is not provisioned: onboarding waits for the product (provisioning/).
    assert (c.status, c.plan_id, c.last_payment_status, c.onboarding_state) == (
        "active",
        "plan_pro",
        "succeeded",
        "pending_provisioning",
    )
    assert c.email == "lin@example.test" and c.current_period_end is not None

    inv2 = events.invoice(w.cus["id"], subscription_id=w.sub_id, status="open")
    w.send("invoice.payment_failed", inv2)
    drain()
    c = w.customer()
    assert (c.status, c.last_payment_status, c.latest_invoice_id) == (
        "past_due",
        "failed",
        inv2["id"],
    )
    assert (
        c.onboarding_state == "pending_provisioning"
    )  # a failed payment is not billing's to revoke

    w.send("invoice.paid", {**inv2, "status": "paid", "paid": True})
    drain()
    assert (w.customer().status, w.customer().last_payment_status) == ("active", "succeeded")

    w.send("customer.subscription.updated", w.sub("active", cancel_at_period_end=True))
    drain()
    assert w.customer().cancel_at_period_end is True

    w.send("customer.subscription.deleted", w.sub("canceled"))
    drain()
    assert w.customer().status == "canceled"
    # every handler run of the journey finished
    assert (
        not HandlerRun.objects.exclude(status=RunStatus.SUCCEEDED)
        .exclude(handler="stripe_mirror")
        .exists()
    )
    assert StripeEvent.objects.filter(status=EventStatus.PROCESSED).count() == 8


def test_older_event_never_overwrites_newer_state(world):
    w = world
    w.send("customer.created", w.cus)
    t_old, t_new = w.tick(), w.tick()
    w.send("customer.subscription.updated", w.sub("canceled"), created=t_new)
    drain()
    w.send("customer.subscription.updated", w.sub("active"), created=t_old)  # late arrival
    drain()
    c = w.customer()
    assert c.status == "canceled"
    run = HandlerRun.objects.get(
        event__created__lt=c.last_event_created,
        event__type="customer.subscription.updated",
        handler="customer_projection",
    )
    assert "older" in run.note


def test_late_payment_failure_does_not_regress_a_recovered_customer(world):
    w = world
    inv = events.invoice(w.cus["id"], subscription_id=w.sub_id, status="open")
    t_fail, t_paid = w.tick(), w.tick()
    w.send("customer.subscription.created", w.sub("active"))
    drain()
    w.send("invoice.paid", {**inv, "status": "paid"}, created=t_paid + 100)
    drain()
    w.send("invoice.payment_failed", inv, created=t_fail + 50)
    drain()
    c = w.customer()
    assert (c.status, c.last_payment_status) == ("active", "succeeded")


def test_first_seen_customer_matching_only_by_email_is_linked_for_review(world):
    existing = CustomerFactory(email="lin@example.test", product_user_id="u-42")
    world.send("customer.created", world.cus)
    drain()
    existing.refresh_from_db()
    assert existing.stripe_customer_id == world.cus["id"]
    assert existing.match_state == MatchState.MATCHED_BY_EMAIL
    assert Customer.objects.count() == 1


def test_customer_first_seen_by_stripe_id_is_created_linked(world):
    world.send("customer.subscription.created", world.sub("trialing"))
    drain()
    c = world.customer()
    assert c.match_state == MatchState.LINKED_BY_STRIPE_ID
    assert c.status == "trialing"


def test_dispute_finds_its_customer_through_the_charge_and_marks_disputed(world):
    w = world
    w.send("customer.subscription.created", w.sub("active"))
    charge = events.charge(w.cus["id"])
    w.send(
        "payment_intent.succeeded",
        {
            **events.example("payment_intent"),
            "customer": w.cus["id"],
            "latest_charge": charge["id"],
            "status": "succeeded",
        },
    )
    w.send("charge.refunded", {**charge, "amount_refunded": 500, "refunded": False})
    drain()
    assert w.customer().last_payment_status == "partially_refunded"
    dispute_event = w.send("charge.dispute.created", events.dispute(charge))
    drain()
    c = w.customer()
    assert (c.status, c.last_payment_status) == ("disputed", "disputed")
    row = StripeEvent.objects.get(stripe_id=dispute_event["id"])
    assert row.stripe_customer_id == w.cus["id"]


def test_end_of_an_old_subscription_does_not_cancel_the_current_one(world):
    w = world
    old_sub = events.subscription(w.cus["id"], status="active")
    w.send("customer.subscription.created", old_sub)
    w.send("customer.subscription.created", w.sub("active", plan_id="plan_team"))
    w.send("customer.subscription.deleted", {**old_sub, "status": "canceled"})
    drain()
    c = w.customer()
    assert (c.status, c.subscription_id, c.plan_id) == ("active", w.sub_id, "plan_team")
