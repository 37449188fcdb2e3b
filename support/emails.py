"""Customer emails: one per failed invoice (what to do next), one confirmation when that
invoice is paid. Written to the outbox (built-in ``email`` channel) by the
``customer_notification`` subscriber of billing's events.

One email per invoice, not per retry: the dedupe key is the invoice
(``email:payment_failed:<invoice>``); Stripe's later retries of the same invoice find the
row and send nothing. The confirmation is sent only for an invoice we emailed about, and
no failure email goes out for an invoice Stripe already told us was paid (events arrive
in any order).

The address is the customer's, else the one the invoice carries (``customer_email``),
else one a charge or payment of the customer carried (billing details, receipt address).
With none known yet (the customer record came from an event without one, before
``customer.created`` was processed) the run fails and is retried until the address
arrives, or is dead and alerted: never "succeeded" without sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from billing import events
from billing.events import BillingEvent
from customers.models import Customer
from delivery.email import EMAIL, email_payload
from delivery.models import OutboxMessage
from delivery.outbox import outbox_write
from support.content import amount_of

SUBSCRIBER = "customer_notification"
EVENT_TYPES = (
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.payment_action_required",
)
PAYMENT_FAILED = "email_payment_failed"
PAYMENT_RECOVERED = "email_payment_recovered"
TEMPLATES = {PAYMENT_FAILED: "emails/payment_failed", PAYMENT_RECOVERED: "emails/payment_recovered"}


class NoAddressYet(RuntimeError):
    """No email address is known for the customer yet: the run is retried (with the
    pipeline's backoff) until one is, or is dead and alerted."""


def _queue(
    kind: str, *, customer: Customer, event: BillingEvent, invoice: Mapping[str, Any], to: str
) -> tuple[OutboxMessage, bool]:
    context = {
        "name": customer.name or "there",
        "amount": amount_of(invoice),
        "plan": customer.plan_name or "your subscription",
        "invoice_url": invoice.get("hosted_invoice_url") or "",
        "product": settings.EMAIL_PRODUCT_NAME,
    }
    subject = render_to_string(f"{TEMPLATES[kind]}_subject.txt", context).strip()
    body = render_to_string(f"{TEMPLATES[kind]}.txt", context)
    return outbox_write(
        channel=EMAIL,
        kind=kind,
        customer=customer,
        cause=event.cause,
        dedupe_key=f"email:{kind.removeprefix('email_')}:{invoice['id']}",
        payload=email_payload(to=to, subject=subject, body=body),
    )


def customer_notification(event: BillingEvent) -> str:
    """Subscriber ``customer_notification``."""
    if event.type not in ("invoice.payment_failed", "invoice.paid", "invoice.payment_succeeded"):
        return f"nothing to do: no customer email for {event.type}"
    customer = Customer.objects.filter(pk=event.customer_id).first() if event.customer_id else None
    if customer is None:
        return "nothing to do: no canonical customer for this event"
    if customer.erased_at is not None:
        return "nothing to do: the customer's data was erased on request"
    invoice = event.object
    if not invoice.get("id"):
        return "nothing to do: the invoice has no id"
    if event.type == "invoice.payment_failed":
        if events.invoice_was_paid(invoice["id"]):
            return f"nothing to do: invoice {invoice['id']} is already paid"
        kind = PAYMENT_FAILED
    else:
        if not OutboxMessage.objects.filter(
            dedupe_key=f"email:payment_failed:{invoice['id']}"
        ).exists():
            return "nothing to do: no failure email was sent for this invoice"
        kind = PAYMENT_RECOVERED
    to = customer.email or events.email_of(invoice) or events.email_seen(event.stripe_customer_id)
    if not to:
        raise NoAddressYet(
            f"no email address for customer {customer.pk} yet (not on the customer, "
            f"invoice {invoice['id']} or its charges); retried until one is known"
        )
    row, created = _queue(kind, customer=customer, event=event, invoice=invoice, to=to)
    return f"{row.kind} {'queued' if created else 'already queued'} (#{row.pk})"
