"""Customer journeys as Stripe tells them: the events, in Stripe's order, built from
Stripe's example objects (devkit.stripe_events), and the state README's status map says
each one ends in. Rendered in any API version by ``devkit.stripe_events.event``.

Each journey is built with fresh ids, so one test can run it many times over, once per
delivery order, without one run seeing another's customer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from billing import shapes
from devkit import stripe_events as events

EMAIL = "lin@example.test"


@dataclass
class Journey:
    name: str
    customer_id: str
    steps: list[tuple[str, dict[str, Any]]]
    """(event type, object) in Stripe's order."""
    after_each: list[str]
    """The customer's status after each step in Stripe's order."""
    expected: dict[str, Any]
    """Customer fields at the end, whatever the order."""
    ids: dict[str, str] = field(default_factory=dict)

    def envelopes(self, *, version: str | None = None, base: int) -> list[dict[str, Any]]:
        """The journey's events in Stripe's order, ten seconds apart from ``base``."""
        return [
            events.event(event_type, obj, created=base + 10 * i, api_version=version)
            for i, (event_type, obj) in enumerate(self.steps)
        ]


def _paying() -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, Any]]]:
    """A customer who subscribed and paid the first invoice (the first steps of every
    journey): customer.created, subscription created (incomplete), payment intent
    succeeded, first invoice paid, subscription updated (active)."""
    cus = events.customer(email=EMAIL, name="Lin Park")
    sub_id = events.new_id("sub")
    item_id = events.new_id("si")
    charge_id, pi_id = events.new_id("ch"), events.new_id("pi")
    first = events.invoice(
        cus["id"],
        subscription_id=sub_id,
        billing_reason="subscription_create",
        charge=charge_id,
        payment_intent=pi_id,
    )
    charge = events.charge(
        cus["id"], charge_id=charge_id, payment_intent=pi_id, invoice_id=first["id"]
    )
    pi = events.payment_intent(
        cus["id"], pi_id=pi_id, latest_charge=charge_id, invoice_id=first["id"]
    )

    def sub(status: str, **kw: Any) -> dict[str, Any]:
        kw.setdefault("latest_invoice", first["id"])
        kw.setdefault("nickname", "Pro")
        return events.subscription(cus["id"], status=status, sub_id=sub_id, item_id=item_id, **kw)

    steps: list[tuple[str, Any]] = [
        ("customer.created", cus),
        ("customer.subscription.created", sub("incomplete")),
        ("payment_intent.succeeded", pi),
        ("invoice.paid", first),
        ("customer.subscription.updated", sub("active")),
    ]
    return cus, {"sub": sub, "sub_id": sub_id, "charge": charge, "first": first}, steps


def subscription_journey(version: str | None = None) -> Journey:
    """Subscribed, paid, a renewal failing twice then paid, a plan change, canceled at
    the period's end, deleted. Since basil the renewal's payment is also an
    ``invoice_payment.paid`` (InvoicePayment) event."""
    cus, world, steps = _paying()
    sub = world["sub"]
    renewal = events.invoice(cus["id"], subscription_id=world["sub_id"], status="open")
    renewal["hosted_invoice_url"] = f"https://invoice.stripe.com/i/{renewal['id']}"
    team = {"plan_id": "plan_team", "amount": 5000, "nickname": "Team"}
    paid = {**renewal, "status": "paid", "amount_paid": 2000, "amount_remaining": 0}
    payment = (
        [("invoice_payment.paid", events.invoice_payment(paid))]
        if (version or events.newest_version()) >= shapes.BASIL
        else []
    )
    steps += [
        ("invoice.payment_failed", renewal),
        ("customer.subscription.updated", sub("past_due", latest_invoice=renewal["id"])),
        ("invoice.payment_failed", {**renewal, "attempt_count": 3}),
        *payment,
        ("invoice.paid", paid),
        ("customer.subscription.updated", sub("active", latest_invoice=renewal["id"])),
        ("customer.subscription.updated", sub("active", latest_invoice=renewal["id"], **team)),
        (
            "customer.subscription.updated",
            sub("active", latest_invoice=renewal["id"], cancel_at_period_end=True, **team),
        ),
        (
            "customer.subscription.deleted",
            sub("canceled", latest_invoice=renewal["id"], cancel_at_period_end=True, **team),
        ),
    ]
    return Journey(
        "subscription",
        cus["id"],
        steps,
        after_each=[
            "none",
            "incomplete",
            "incomplete",
            "active",
            "active",
            "past_due",
            "past_due",
            "past_due",
            *(["active"] * len(payment)),
            "active",
            "active",
            "active",
            "active",
            "canceled",
        ],
        expected={
            "status": "canceled",
            "plan_id": "plan_team",
            "plan_name": "Team",
            "subscription_id": world["sub_id"],
            "cancel_at_period_end": True,
            "latest_invoice_id": renewal["id"],
            "last_payment_status": "succeeded",
            "email": EMAIL,
        },
        ids={"renewal": renewal["id"], "sub": world["sub_id"]},
    )


def refund_after_cancellation_journey(version: str | None = None) -> Journey:
    """A subscriber canceled, then their last payment refunded in full."""
    cus, world, steps = _paying()
    charge = world["charge"]
    steps += [
        ("customer.subscription.deleted", world["sub"]("canceled")),
        ("charge.refunded", {**charge, "amount_refunded": charge["amount"], "refunded": True}),
    ]
    return Journey(
        "refund_after_cancellation",
        cus["id"],
        steps,
        after_each=["none", "incomplete", "incomplete", "active", "active", "canceled", "refunded"],
        expected={"status": "refunded", "last_payment_status": "refunded", "plan_id": "plan_pro"},
        ids={"sub": world["sub_id"]},
    )


def dispute_journey(outcome: str, version: str | None = None) -> Journey:
    """A paying subscriber disputes their payment; the dispute is won or lost. Either way
    the customer is back to the subscription's status (active); a lost one leaves the
    payment refunded."""
    cus, world, steps = _paying()
    opened = events.dispute(world["charge"], status="needs_response")
    steps += [
        ("charge.dispute.created", opened),
        ("charge.dispute.closed", {**opened, "status": outcome}),
    ]
    return Journey(
        f"dispute_{outcome}",
        cus["id"],
        steps,
        after_each=["none", "incomplete", "incomplete", "active", "active", "disputed", "active"],
        expected={
            "status": "active",
            "last_payment_status": "succeeded" if outcome == "won" else "refunded",
            "plan_id": "plan_pro",
        },
        ids={"dispute": opened["id"]},
    )


# name -> builder(api version): the journey's events as Stripe sends them in that version.
JOURNEYS: dict[str, Callable[[str | None], Journey]] = {
    "subscription": subscription_journey,
    "refund_after_cancellation": refund_after_cancellation_journey,
    "dispute_won": lambda version=None: dispute_journey("won", version),
    "dispute_lost": lambda version=None: dispute_journey("lost", version),
}


def orders(n: int, count: int, *, seed: int) -> list[list[int]]:
    """Stripe's order, the reverse, then seeded shuffles: ``count`` distinct orders of
    ``n`` events in all (fewer when there are fewer orders)."""
    out = [list(range(n)), list(range(n))[::-1]]
    rng = random.Random(seed)
    seen = {tuple(o) for o in out}
    limit = 1
    for k in range(2, n + 1):
        limit *= k
    while len(out) < min(count, limit):
        order = list(range(n))
        rng.shuffle(order)
        if tuple(order) not in seen:
            seen.add(tuple(order))
            out.append(order)
    return out[:count]


def in_order(items: Sequence[Any], order: Iterable[int]) -> list[Any]:
    return [items[i] for i in order]
