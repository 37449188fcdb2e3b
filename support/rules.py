"""Which Stripe events open or solve which ticket: the one table (README has it).

Each rule names the Stripe event types it applies to, whether it opens a ticket or
solves one, the queue and priority of a ticket it opens, and the *situation key* that
identifies the real situation (``payment_failed:<invoice id>``). The key is unique on
``Ticket``: Stripe retrying a payment four times, or an event replayed, finds the same
ticket instead of opening another.

``needs_review`` has no event: it is opened by code when the state is unknown or
conflicting after retries (two CRM contacts match one customer, a CRM update or an
email failed for good).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from support.models import TicketPriority as Pr

OPEN = "open"
SOLVE = "solve"

# Queue slugs (rows created by migration support.0002).
BILLING, DISPUTES, RETENTION, HUMAN_REVIEW = "billing", "disputes", "retention", "human_review"
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
}

KeyFn = Callable[[dict[str, Any], Any], str | None]


def _invoice_key(obj: dict[str, Any], customer: Any) -> str | None:
    return f"payment_failed:{obj['id']}" if obj.get("id") else None


def _payment_intent_key(obj: dict[str, Any], customer: Any) -> str | None:
    # A subscription payment failing also fails its invoice: that ticket is the one.
    invoice = obj.get("invoice")
    if isinstance(invoice, dict):
        invoice = invoice.get("id")
    if invoice:
        return f"payment_failed:{invoice}"
    if customer.subscription_id:
        return None  # invoice.payment_failed covers subscription payments
    return f"payment_failed:{obj['id']}" if obj.get("id") else None


def _dispute_key(obj: dict[str, Any], customer: Any) -> str | None:
    return f"dispute:{obj['id']}" if obj.get("id") else None


def _canceled_key(obj: dict[str, Any], customer: Any) -> str | None:
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


TICKET_RULES: tuple[TicketRule, ...] = (
    TicketRule(
        "payment_failed",
        ("invoice.payment_failed",),
        OPEN,
        _invoice_key,
        queue=BILLING,
        priority=Pr.HIGH,
        subject="Payment failed: {customer} (invoice {object_id})",
    ),
    TicketRule(
        "payment_failed",
        ("payment_intent.payment_failed",),
        OPEN,
        _payment_intent_key,
        queue=BILLING,
        priority=Pr.HIGH,
        subject="Payment failed: {customer} ({object_id})",
    ),
    TicketRule(
        "payment_recovered",
        ("invoice.paid", "invoice.payment_succeeded"),
        SOLVE,
        _invoice_key,
        note="Recovered: invoice {object_id} was paid. Nothing left to do.",
    ),
    TicketRule(
        "dispute_opened",
        ("charge.dispute.created",),
        OPEN,
        _dispute_key,
        queue=DISPUTES,
        priority=Pr.URGENT,
        subject="Dispute opened: {customer} (charge {charge})",
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


def rules_for(event_type: str) -> list[TicketRule]:
    return [rule for rule in TICKET_RULES if event_type in rule.events]
