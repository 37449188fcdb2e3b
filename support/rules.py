"""Which Stripe events open or solve which ticket: the one table (README has it).

Each rule names the Stripe event types it applies to, whether it opens a ticket or
solves one, the queue and priority of a ticket it opens, and the *situation key* that
identifies the real situation (``payment_failed:<invoice id>``). The key is unique on
``Ticket``: Stripe retrying a payment four times, or an event replayed, finds the same
ticket instead of opening another.

Order-proof: Stripe's events arrive in any order. A rule that opens a ticket also says
when its situation is already over (``over``: the invoice was paid, the dispute closed
before the opening event was processed); the ticket is then solved as it is opened, so
every order ends in the same solved ticket.

Stripe objects are read through billing's published readers (billing/events.py), which
know every API version's shape: since 2025-03-31.basil a payment intent no longer names
its invoice, and ``events.invoice_id`` asks Stripe for it.

``needs_review`` has no event: it is opened by code when the state is unknown or
conflicting after retries (two CRM contacts match one customer, a CRM update or an
email failed for good).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billing import events
from billing.events import BillingEvent
from support.models import TicketPriority as Pr

OPEN = "open"
SOLVE = "solve"

# Queue slugs (rows created by migration support.0002).
BILLING, DISPUTES, RETENTION, HUMAN_REVIEW = "billing", "disputes", "retention", "human_review"
# Marketplace sellers (rows created by migration support.0003; support/sellers.py).
SELLER_DISPUTES, SELLERS = "seller_disputes", "sellers"
_EVERY_ROLE = ("owner", "finance_admin", "support_agent")
# slug -> (name, description, role groups that may work it). Migration support.0002
# created these rows and grants; support.services.queue_get re-creates a missing one.
QUEUES = {
    BILLING: ("Billing", "Failed payments: one ticket per unpaid invoice", _EVERY_ROLE),
    DISPUTES: (
        "Disputes",
        "Chargebacks: finance admins and owners only",
        ("owner", "finance_admin"),
    ),
    RETENTION: (
        "Retention",
        "Cancellations: a note for whoever talks to the customer next",
        _EVERY_ROLE,
    ),
    HUMAN_REVIEW: ("Human review", "State unknown or conflicting after retries", _EVERY_ROLE),
    SELLER_DISPUTES: (
        "Seller disputes",
        "Chargebacks on marketplace orders: order, buyer and seller; finance admins and owners",
        ("owner", "finance_admin"),
    ),
    SELLERS: (
        "Sellers",
        "Marketplace sellers' problems: failed payouts of their connected accounts",
        _EVERY_ROLE,
    ),
}

KeyFn = Callable[[BillingEvent, Any], str | None]
# (event, situation key) -> the note that solves the ticket at once, or None.
OverFn = Callable[[BillingEvent, str], str | None]


def _invoice_key(event: BillingEvent, customer: Any) -> str | None:
    invoice = events.linked_invoice_id(event.object)
    return f"payment_failed:{invoice}" if invoice else None


def _recovered_key(event: BillingEvent, customer: Any) -> str | None:
    obj = event.object
    if events.object_type(obj) == "invoice_payment" and not events.invoice_payment_pays_in_full(
        obj
    ):
        return None  # a part payment: the invoice is still open
    return _invoice_key(event, customer)


def _payment_intent_key(event: BillingEvent, customer: Any) -> str | None:
    # A subscription payment failing also fails its invoice: that ticket is the one. A
    # one-off payment (no invoice) is its own situation.
    invoice = events.invoice_id(event)
    if invoice:
        return f"payment_failed:{invoice}"
    obj = event.object
    return f"payment_failed:{obj['id']}" if obj.get("id") else None


def _payment_over(event: BillingEvent, key: str) -> str | None:
    invoice = key.removeprefix("payment_failed:")
    if invoice.startswith("in_") and events.invoice_was_paid(invoice):
        return f"Recovered: invoice {invoice} was paid. Nothing left to do."
    return None


def _dispute_key(event: BillingEvent, customer: Any) -> str | None:
    obj = event.object
    if not obj.get("id"):
        return None
    order = events.order_of(event)
    if order is not None and order.seller_account_id:
        return None  # a marketplace order's dispute: the seller queue's (support/sellers.py)
    return f"dispute:{obj['id']}"


def dispute_over(event: BillingEvent, key: str) -> str | None:
    closed = events.dispute_closed(key.removeprefix("dispute:"))
    if closed is None:
        return None
    return f"Dispute {closed.get('id')} closed: {closed.get('status', '')}."


def _canceled_key(event: BillingEvent, customer: Any) -> str | None:
    obj = event.object
    if obj.get("object") == "subscription":
        return f"canceled:{obj['id']}" if obj.get("status") == "canceled" else None
    # A deleted Stripe customer ends their subscription: the same retention note.
    return f"canceled:{customer.subscription_id or obj.get('id')}"


@dataclass(frozen=True)
class TicketRule:
    situation: str
    events: tuple[str, ...]
    action: str
    key: KeyFn | None
    queue: str = ""
    priority: str = Pr.NORMAL
    subject: str = ""
    note: str = ""
    over: OverFn | None = None


TICKET_RULES: tuple[TicketRule, ...] = (
    TicketRule(
        "payment_failed",
        ("invoice.payment_failed",),
        OPEN,
        _invoice_key,
        queue=BILLING,
        priority=Pr.HIGH,
        subject="Payment failed: {customer} (invoice {object_id})",
        over=_payment_over,
    ),
    TicketRule(
        "payment_failed",
        ("payment_intent.payment_failed",),
        OPEN,
        _payment_intent_key,
        queue=BILLING,
        priority=Pr.HIGH,
        subject="Payment failed: {customer} ({object_id})",
        over=_payment_over,
    ),
    TicketRule(
        "payment_recovered",
        ("invoice.paid", "invoice.payment_succeeded", "invoice_payment.paid"),
        SOLVE,
        _recovered_key,
        note="Recovered: invoice {invoice} was paid. Nothing left to do.",
    ),
    TicketRule(
        "dispute_opened",
        ("charge.dispute.created",),
        OPEN,
        _dispute_key,
        queue=DISPUTES,
        priority=Pr.URGENT,
        subject="Dispute opened: {customer} (charge {charge})",
        over=dispute_over,
    ),
    TicketRule(
        "dispute_closed",
        ("charge.dispute.closed",),
        SOLVE,
        _dispute_key,
        note="Dispute {object_id} closed: {status}.",
    ),
    TicketRule(
        "subscription_canceled",
        ("customer.subscription.deleted", "customer.subscription.updated", "customer.deleted"),
        OPEN,
        _canceled_key,
        queue=RETENTION,
        priority=Pr.NORMAL,
        subject="Canceled: {customer} ({plan})",
    ),
    # Opened by support/sellers.py (the ``seller_ticket`` subscriber), not by this table.
    TicketRule(
        "seller_dispute",
        (),
        OPEN,
        None,
        queue=SELLER_DISPUTES,
        priority=Pr.URGENT,
        subject="Seller dispute: order #{order} ({seller}), charge {charge}",
    ),
    TicketRule(
        "seller_payout_failed",
        (),
        OPEN,
        None,
        queue=SELLERS,
        priority=Pr.HIGH,
        subject="Payout failed: {seller} ({payout})",
    ),
    TicketRule(
        "needs_review",
        (),
        OPEN,
        None,
        queue=HUMAN_REVIEW,
        priority=Pr.HIGH,
        subject="Needs review: {customer}",
    ),
)

NEEDS_REVIEW = next(rule for rule in TICKET_RULES if rule.situation == "needs_review")
SELLER_DISPUTE = next(rule for rule in TICKET_RULES if rule.situation == "seller_dispute")
SELLER_PAYOUT_FAILED = next(
    rule for rule in TICKET_RULES if rule.situation == "seller_payout_failed"
)


def rules_for(event_type: str) -> list[TicketRule]:
    return [rule for rule in TICKET_RULES if event_type in rule.events]
