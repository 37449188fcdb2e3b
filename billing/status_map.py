"""The status map: Stripe event type + object state -> internal state -> follow-up actions.

This table is the one place that decides what a Stripe event means for the canonical
customer. Each ``Rule`` names:

- ``status``: a function of (object, current status) giving the new internal status, or
  ``None`` to leave it;
- ``payment``: the new last-payment status, or ``None``.

Which other apps act on an event is not decided here: they subscribe to billing's
published events by type (billing/events.py), and each subscriber gets its own run.

Never regress: the projection (billing/projection.py) keeps, for the status fields, the
payment fields and the profile fields separately, the ``created`` time of the last event
applied to them. An older event never overwrites newer state; an event from the same
second that would change the state is ambiguous, and the projection then re-reads the
object from Stripe instead of guessing. README.md has this table in words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from customers.models import BillingStatus as S
from customers.models import OnboardingState as O
from customers.models import PaymentStatus as P

# Billing's own handler runs (billing/handlers.py); subscribers' runs are named after them.
PROJECTION = "customer_projection"
MIRROR = "stripe_mirror"

StatusFn = Callable[[dict[str, Any], str], str | None]

# Stripe subscription.status -> internal status (identical names, listed for clarity).
SUBSCRIPTION_STATUS = {
    "trialing": S.TRIALING,
    "active": S.ACTIVE,
    "past_due": S.PAST_DUE,
    "unpaid": S.UNPAID,
    "canceled": S.CANCELED,
    "incomplete": S.INCOMPLETE,
    "incomplete_expired": S.INCOMPLETE_EXPIRED,
    "paused": S.PAUSED,
}

# Onboarding follows the billing status it is given.
ONBOARDING_FOR_STATUS = {
    S.TRIALING: O.ACTIVE,
    S.ACTIVE: O.ACTIVE,
    S.PAST_DUE: O.RETRYING,
    S.INCOMPLETE: O.PENDING_PROVISIONING,
    S.INCOMPLETE_EXPIRED: O.FAILED,
}


def _from_subscription(obj: dict[str, Any], current: str) -> str | None:
    return SUBSCRIPTION_STATUS.get(obj.get("status", ""))


def _canceled(obj: dict[str, Any], current: str) -> str | None:
    return S.CANCELED


def _payment_failed(obj: dict[str, Any], current: str) -> str | None:
    # The first invoice of a subscription failing leaves it incomplete; a renewal failing
    # makes a paying customer past due. Other states are left to subscription events.
    if obj.get("billing_reason") == "subscription_create" and current in (S.NONE, S.INCOMPLETE):
        return S.INCOMPLETE
    if current in (S.ACTIVE, S.TRIALING):
        return S.PAST_DUE
    return None


def _invoice_paid(obj: dict[str, Any], current: str) -> str | None:
    # A paid invoice brings back a customer who was behind; it does not resurrect a
    # canceled subscription (a final invoice can be paid after cancellation).
    if obj.get("subscription") and current in (S.NONE, S.PAST_DUE, S.UNPAID, S.INCOMPLETE):
        return S.ACTIVE
    return None


def _refund_status(obj: dict[str, Any], current: str) -> str | None:
    # A fully refunded charge of a customer with nothing running is "refunded"; a
    # subscriber keeps their subscription status (the refund shows in payment status).
    if obj.get("refunded") and current in (S.NONE, S.CANCELED):
        return S.REFUNDED
    return None


def _refund_payment(obj: dict[str, Any]) -> str:
    return P.REFUNDED if obj.get("refunded") else P.PARTIALLY_REFUNDED


def _disputed(obj: dict[str, Any], current: str) -> str | None:
    return S.DISPUTED


@dataclass(frozen=True)
class Rule:
    status: StatusFn | None = None
    payment: Callable[[dict[str, Any]], str] | str | None = None
    # Re-derive the status from the subscription in Stripe (e.g. after a dispute closes).
    rederive_from_subscription: bool = False
    notes: str = ""
    mirror: bool = True

    def payment_status(self, obj: dict[str, Any]) -> str | None:
        if callable(self.payment):
            return self.payment(obj)
        return self.payment


RULES: dict[str, Rule] = {
    "checkout.session.completed": Rule(
        payment=lambda o: P.SUCCEEDED if o.get("payment_status") == "paid" else None,
        mirror=False,
        notes="links the customer; subscription events carry the status",
    ),
    "customer.created": Rule(),
    "customer.updated": Rule(),
    "customer.deleted": Rule(status=_canceled, mirror=False),
    "customer.subscription.created": Rule(status=_from_subscription),
    "customer.subscription.updated": Rule(status=_from_subscription),
    "customer.subscription.deleted": Rule(status=_canceled),
    "customer.subscription.trial_will_end": Rule(),
    "invoice.paid": Rule(status=_invoice_paid, payment=P.SUCCEEDED),
    "invoice.payment_failed": Rule(status=_payment_failed, payment=P.FAILED),
    "invoice.payment_action_required": Rule(payment=P.ACTION_REQUIRED),
    "payment_intent.succeeded": Rule(payment=P.SUCCEEDED),
    "payment_intent.payment_failed": Rule(payment=P.FAILED),
    "charge.refunded": Rule(status=_refund_status, payment=_refund_payment),
    "charge.dispute.created": Rule(status=_disputed, payment=P.DISPUTED, mirror=False),
    "charge.dispute.closed": Rule(
        payment=lambda o: P.SUCCEEDED if o.get("status") == "won" else P.REFUNDED,
        rederive_from_subscription=True,
        mirror=False,
    ),
}

# invoice.payment_succeeded is what older API versions (and localstripe) send for a paid
# invoice; it means the same as invoice.paid.
RULES["invoice.payment_succeeded"] = RULES["invoice.paid"]


@dataclass(frozen=True)
class Outcome:
    """What a rule decides for one event, before the never-regress guard is applied."""

    status: str | None
    payment: str | None
    onboarding: str | None


def rule_for(event_type: str) -> Rule | None:
    return RULES.get(event_type)


def handlers_for(event_type: str) -> tuple[str, ...]:
    """The handler runs an event fans out into: the projection, the mirror, then every
    subscriber of the type. Types not in the map fan out into nothing."""
    from django.conf import settings

    from billing.events import subscriptions_for

    rule = rule_for(event_type)
    if rule is None:
        return ()
    mirror = (MIRROR,) if rule.mirror and settings.STRIPE_MIRROR_ENABLED else ()
    return (PROJECTION, *mirror, *(sub.name for sub in subscriptions_for(event_type)))


def decide(rule: Rule, obj: dict[str, Any], current_status: str) -> Outcome:
    status = rule.status(obj, current_status) if rule.status else None
    return Outcome(
        status=status,
        payment=rule.payment_status(obj),
        onboarding=ONBOARDING_FOR_STATUS.get(status) if status else None,
    )
