"""The ``helpdesk_ticket`` subscriber of billing's events: apply the ticket rules
(support/rules.py) to one event, inside its run's transaction. Also the receiver that
opens a review ticket when a CRM or email delivery for a customer is dead."""

from __future__ import annotations

import logging
from typing import Any

from billing import events
from billing.events import BillingEvent
from customers.models import BillingStatus, Customer, MatchState
from support import rules, services
from support.content import ticket_body
from support.models import Ticket

logger = logging.getLogger(__name__)

SUBSCRIBER = "helpdesk_ticket"
# The Stripe events after which the ticket rules are applied (and the review check made).
EVENT_TYPES = (
    "customer.deleted",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice_payment.paid",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
)
# The channels whose dead rows a person must look at for the customer's sake (a dead
# product_webhook row: the product never learned the customer paid, or was revoked).
REVIEW_CHANNELS = ("crm", "email", "product_webhook")


def helpdesk_ticket(event: BillingEvent) -> str:
    customer = Customer.objects.filter(pk=event.customer_id).first() if event.customer_id else None
    if customer is None:
        return "nothing to do: no canonical customer for this event"
    if customer.erased_at is not None:
        return "nothing to do: the customer's data was erased on request"
    obj = event.object
    notes = []
    for rule in rules.rules_for(event.type):
        key = rule.key(event, customer) if rule.key else None
        if not key:
            continue
        fields = {
            "customer": customer.display_name,
            "object_id": obj.get("id", ""),
            "invoice": events.linked_invoice_id(obj) or "",
            "charge": events.charge_id_of(obj),
            "status": obj.get("status", ""),
            "plan": customer.plan_name or customer.plan_id or "no plan",
        }
        if rule.action == rules.OPEN:
            ticket, created = services.ticket_open(
                customer=customer,
                rule=rule,
                situation_key=key,
                subject=rule.subject.format(**fields),
                body=ticket_body(
                    customer,
                    obj=obj,
                    livemode=event.livemode,
                    related=_payment_links(event, key),
                ),
                cause=event.cause,
            )
            notes.append(
                f"{'opened' if created else 'already open'} ticket #{ticket.pk} ({rule.queue})"
            )
            over = rule.over(event, key) if rule.over else None
            if over and services.ticket_solve(situation_key=key, note=over, cause=event.cause):
                # Its situation ended before this event was processed (Stripe's events
                # arrive in any order): the same solved ticket as in Stripe's order.
                notes.append(f"solved at once: {over}")
        else:
            solved = services.ticket_solve(
                situation_key=key, note=rule.note.format(**fields), cause=event.cause
            )
            notes.append(f"solved ticket #{solved.pk}" if solved else f"no open ticket {key}")
    if customer.status == BillingStatus.NEEDS_REVIEW or customer.match_state == MatchState.CONFLICT:
        ticket, created = services.review_ticket_open(
            customer_id=customer.pk,
            reason="state",
            summary=f"State needs a person: {customer.get_match_state_display()}; "
            f"{customer.review_reason or 'no reason recorded'}",
            cause=event.cause,
        )
        notes.append(f"review ticket #{ticket.pk}")
    return "; ".join(notes) or f"nothing to do: no ticket rule applies to this {event.type}"


def _payment_links(event: BillingEvent, key: str) -> tuple[str, ...]:
    """The charge or payment intent of a failed invoice, for the links of a ticket about
    to be opened. Since basil an invoice names them only through its InvoicePayments (one
    Stripe call); a ticket is not held back for a link when Stripe cannot be reached."""
    if (
        events.object_type(event.object) != "invoice"
        or Ticket.objects.filter(situation_key=key).exists()
    ):
        return ()
    try:
        charge, payment_intent = events.invoice_payment(event)
    except events.LookupFailed:
        logger.warning(
            "no payment link for invoice %s: Stripe did not answer", event.object.get("id")
        )
        return ()
    return tuple(i for i in (charge, payment_intent) if i)


def review_dead_delivery(
    sender: Any,
    *,
    message_id: int,
    channel: str,
    kind: str,
    customer_id: Any,
    reason: str,
    **kwargs: Any,
) -> None:
    """``delivery.signals.message_dead`` receiver: one review ticket per dead CRM update
    or customer email (the customer's state elsewhere is now wrong or unsent)."""
    if customer_id and channel in REVIEW_CHANNELS:
        services.review_ticket_open(
            customer_id=customer_id, reason=f"{channel}_dead:{message_id}", summary=reason
        )
