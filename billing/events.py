"""Billing's published contract: what Stripe told us, as plain data, and who listens.

This module is everything crm_sync and support may import from billing. Billing
receives a Stripe event, projects it onto the canonical customer, and then publishes a
:class:`BillingEvent` to every subscriber registered for its type. A subscriber is a
function ``(BillingEvent) -> str`` (a short note of what it did) registered with
:func:`subscribe` in its app's ``AppConfig.ready``.

Each subscriber gets its own durable run per event (``billing.models.HandlerRun``, named
after the subscriber): it is retried alone, with backoff, until it succeeds or is dead
and alerted, and a succeeded run never runs again. So a subscriber must be idempotent
(its outbox rows carry dedupe keys) and may raise to be retried. A subscriber runs only
after the projection of its event succeeded, so ``customer_id`` and the customer row it
reads are already up to date.

Stripe objects differ between API versions (billing/shapes.py has the table). Subscribers
read an event's object only through the readers re-exported here, and ask
:func:`invoice_id` / :func:`invoice_payment` for what a newer shape no longer carries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The pure readers of Stripe's shapes (billing/shapes.py), for subscribers.
from billing.shapes import (  # noqa: F401 - re-exported
    charge_id_of,
    email_of,
    invoice_payment_pays_in_full,
    linked_invoice_id,
    object_type,
    ref_id,
)


@dataclass(frozen=True)
class BillingEvent:
    """One Stripe event after billing applied it; plain data only."""

    event_id: str
    """Stripe's event id (``evt_…``): stable across redeliveries and replays."""
    type: str
    created: datetime | None
    livemode: bool
    customer_id: uuid.UUID | None
    """The canonical customer (``customers.Customer`` pk) billing resolved, or None."""
    stripe_customer_id: str
    object: Mapping[str, Any] = field(default_factory=dict)
    """The Stripe object of the event (``data.object``), as Stripe sent it."""
    changes: tuple[str, ...] = ()
    """The customer fields the projection changed (``status``, ``plan_id`` …), and
    ``order_created`` / ``order_state`` / ``order_amount_refunded`` when the event changed
    an order (read it with :func:`order_of`)."""
    account: str = ""
    """The connected account (``acct_…``) the event happened on: Stripe's envelope
    ``account``, set on events a Connect endpoint receives (a seller's payout)."""

    @property
    def cause(self) -> str:
        """How outbox rows and tickets name this event as their cause."""
        return f"stripe_event:{self.event_id}"


Subscriber = Callable[[BillingEvent], str]


@dataclass(frozen=True)
class Subscription:
    name: str
    event_types: frozenset[str]
    fn: Subscriber


_SUBSCRIPTIONS: dict[str, Subscription] = {}


def subscribe(name: str, event_types: Iterable[str], fn: Subscriber) -> None:
    """Run ``fn`` for every event of ``event_types`` (one durable run per event, named
    ``name``). Registering a name again replaces it (apps' ready() may run twice in tests)."""
    if not name or len(name) > 40:
        raise ValueError(f"invalid subscriber name {name!r}")
    _SUBSCRIPTIONS[name] = Subscription(name=name, event_types=frozenset(event_types), fn=fn)


def subscriptions_for(event_type: str) -> list[Subscription]:
    """The subscriptions an event of ``event_type`` fans out into, in registration order."""
    return [sub for sub in _SUBSCRIPTIONS.values() if event_type in sub.event_types]


def subscription(name: str) -> Subscription | None:
    return _SUBSCRIPTIONS.get(name)


class LookupFailed(RuntimeError):
    """What an event's object no longer carries could not be asked of Stripe right now
    (:func:`invoice_id`, :func:`invoice_payment`): retry later."""


class NotProjectedYet(RuntimeError):
    """The event has not been applied to the customer yet: the subscriber's run is
    retried (with the pipeline's backoff) instead of acting on a stale state."""


# --- marketplace orders (billing/orders.py decides their state) -------------------------


@dataclass(frozen=True)
class OrderFacts:
    """One order (a one-time payment) as it stands now; plain data only."""

    order_id: int
    state: str
    """paid | partially_refunded | refunded | disputed | won | lost (and pending, failed
    before a delayed payment method settled)."""
    buyer_customer_id: uuid.UUID | None
    seller_customer_id: uuid.UUID | None
    amount: int
    currency: str
    amount_refunded: int
    application_fee_amount: int
    payment_intent_id: str
    charge_id: str
    checkout_session_id: str
    seller_account_id: str


def _order_facts(order: Any) -> OrderFacts:
    return OrderFacts(
        order_id=order.pk,
        state=order.state,
        buyer_customer_id=order.buyer_id,
        seller_customer_id=order.seller_id,
        amount=order.amount,
        currency=order.currency,
        amount_refunded=order.amount_refunded,
        application_fee_amount=order.application_fee_amount,
        payment_intent_id=order.payment_intent_id or "",
        charge_id=order.charge_id or "",
        checkout_session_id=order.checkout_session_id or "",
        seller_account_id=order.seller_account_id,
    )


def order_of(event: BillingEvent) -> OrderFacts | None:
    """The order this event touched (its payment's, by any id the object names), in its
    current state; None when the event is about no order (a subscription's payment)."""
    from billing.orders import order_for

    order = order_for(event.object)
    return _order_facts(order) if order is not None else None


# --- reads subscribers may make --------------------------------------------------------


@dataclass(frozen=True)
class EventSummary:
    event_id: str
    type: str
    created: datetime | None


def recent_events(stripe_customer_id: str, *, limit: int = 5) -> list[EventSummary]:
    """The customer's newest Stripe events (by Stripe's ``created``), for ticket bodies."""
    from billing.models import StripeEvent

    if not stripe_customer_id:
        return []
    rows = (
        StripeEvent.objects.filter(stripe_customer_id=stripe_customer_id)
        .order_by("-created", "-id")
        .values_list("stripe_id", "type", "created")[:limit]
    )
    return [EventSummary(event_id=row[0] or "", type=row[1], created=row[2]) for row in rows]


# --- what a newer shape no longer carries -----------------------------------------------


def _resolved_ref(event: BillingEvent, name: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per event: kept in the event row's ``resolved["refs"]``, so a
    retried run or another subscriber does not ask Stripe again. Stripe is asked with
    no row locked; the answer is merged in afterwards."""
    from django.db import transaction

    from billing.models import StripeEvent

    rows = StripeEvent.objects.filter(stripe_id=event.event_id)
    known = rows.values_list("resolved", flat=True).first() or {}
    if name in (known.get("refs") or {}):
        return known["refs"][name]
    from billing.adapters.stripe_client import StripeUnavailable

    try:
        value = compute()
    except StripeUnavailable as exc:
        raise LookupFailed(str(exc)) from exc
    with transaction.atomic():
        row = rows.select_for_update().only("pk", "resolved").first()
        if row is not None:
            resolved = row.resolved or {}
            row.resolved = {**resolved, "refs": {**(resolved.get("refs") or {}), name: value}}
            row.save(update_fields=["resolved"])
    return value


def invoice_id(event: BillingEvent) -> str:
    """The invoice the event's object belongs to ("" for none: a one-off payment).

    Since basil a payment intent no longer names its invoice: it is then asked of Stripe
    (its InvoicePayments, one call, kept with the event). Raises :class:`LookupFailed`
    when Stripe cannot be reached, so the subscriber's run is retried rather than keyed
    wrongly."""
    from billing import shapes

    obj = event.object
    found = shapes.linked_invoice_id(obj)
    if found is not None:
        return found
    pi = (
        str(obj.get("id") or "")
        if object_type(obj) == "payment_intent"
        else ref_id(obj.get("payment_intent"))
    )
    if not pi:
        return ""
    return _resolved_ref(event, "invoice", lambda: shapes.invoice_of_payment_intent(pi))


def invoice_payment(event: BillingEvent) -> tuple[str, str]:
    """(charge, payment intent) of the event's invoice ("" where there is none). Since
    basil an invoice names them only through its InvoicePayments: asked of Stripe (one
    call, kept with the event). Raises :class:`LookupFailed` when Stripe cannot be
    reached."""
    from billing import shapes

    obj = event.object
    found = shapes.invoice_payment_ids(obj)
    if found is not None or not obj.get("id"):
        return found or ("", "")
    charge, pi = _resolved_ref(
        event, "invoice_payment", lambda: list(shapes.payment_of_invoice(str(obj["id"])))
    )
    return charge, pi


PAID_INVOICE_EVENTS = ("invoice.paid", "invoice.payment_succeeded")


def _with_thin(types: tuple[str, ...]) -> list[str]:
    return [*types, *(f"v1.{t}" for t in types)]


def invoice_was_paid(invoice: str) -> bool:
    """Whether Stripe told us ``invoice`` was paid, in any event received so far
    (processed or not): a failure processed after the payment is then already over."""
    from django.db.models import Q

    from billing.models import StripeEvent

    if not invoice:
        return False
    if StripeEvent.objects.filter(
        object_id=invoice, type__in=_with_thin(PAID_INVOICE_EVENTS)
    ).exists():
        return True
    paid_in_full = StripeEvent.objects.filter(
        Q(payload__data__object__invoice=invoice, payload__data__object__status="paid")
        | Q(resolved__object__invoice=invoice, resolved__object__status="paid"),
        type__in=_with_thin(("invoice_payment.paid",)),
    )
    return paid_in_full.exists()


def dispute_closed(dispute: str) -> Mapping[str, Any] | None:
    """The dispute as its ``charge.dispute.closed`` event left it, if one was received:
    an opening processed after the close is then already over."""
    from billing.models import StripeEvent

    if not dispute:
        return None
    row = (
        StripeEvent.objects.filter(
            object_id=dispute, type__in=_with_thin(("charge.dispute.closed",))
        )
        .order_by("-created", "-id")
        .first()
    )
    return row.data_object if row is not None else None


def email_seen(stripe_customer_id: str, *, limit: int = 50) -> str:
    """An email address Stripe sent with any recent event of the customer: an invoice's
    ``customer_email``, a charge's billing details or receipt address, a checkout's
    customer details (newest first; "" when none did)."""
    from billing.models import StripeEvent

    if not stripe_customer_id:
        return ""
    rows = (
        StripeEvent.objects.filter(stripe_customer_id=stripe_customer_id)
        .order_by("-created", "-id")
        .only("payload", "resolved")[:limit]
    )
    return next((found for row in rows if (found := email_of(row.data_object))), "")
