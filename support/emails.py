"""Customer emails: one per failed invoice (what to do next), one confirmation when that
invoice is paid. Written to the outbox (built-in ``email`` channel) by the
``customer_notification`` subscriber of billing's events.

One email per invoice, not per retry: the dedupe key is the invoice
(``email:payment_failed:<invoice>``); Stripe's later retries of the same invoice find the
row and send nothing. The confirmation is sent only for an invoice we emailed about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

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


def _queue(
    kind: str, *, customer: Customer, event: BillingEvent, invoice: Mapping[str, Any]
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
        payload=email_payload(to=customer.email, subject=subject, body=body),
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
    if not customer.email:
        return "not sent: the customer has no email address"
    if event.type == "invoice.payment_failed":
        row, created = _queue(PAYMENT_FAILED, customer=customer, event=event, invoice=invoice)
    else:
        if not OutboxMessage.objects.filter(
            dedupe_key=f"email:payment_failed:{invoice['id']}"
        ).exists():
            return "nothing to do: no failure email was sent for this invoice"
        row, created = _queue(PAYMENT_RECOVERED, customer=customer, event=event, invoice=invoice)
    return f"{row.kind} {'queued' if created else 'already queued'} (#{row.pk})"
