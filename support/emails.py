"""Customer emails: one per failed invoice (what to do next), one confirmation when that
invoice is paid. Written to the outbox by the pipeline's ``customer_notification``
handler and sent by ``deliver_email`` through Django's email backend.

One email per invoice, not per retry: the dedupe key is the invoice
(``email:payment_failed:<invoice>``); Stripe's later retries of the same invoice find the
row and send nothing. The confirmation is sent only for an invoice we emailed about.
"""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from billing.models import StripeEvent
from crm_sync.errors import ConfigurationError, PermanentError, RetryableError
from crm_sync.models import Channel, OutboxMessage
from crm_sync.outbox import outbox_write
from crm_sync.pipeline import customer_for_event
from crm_sync.senders import Delivered
from support.content import amount_of

PAYMENT_FAILED = "email_payment_failed"
PAYMENT_RECOVERED = "email_payment_recovered"
TEMPLATES = {PAYMENT_FAILED: "emails/payment_failed", PAYMENT_RECOVERED: "emails/payment_recovered"}


def _queue(kind: str, *, customer, event: StripeEvent, invoice: dict) -> tuple[OutboxMessage, bool]:
    context = {"name": customer.name or "there", "amount": amount_of(invoice),
               "plan": customer.plan_name or "your subscription",
               "invoice_url": invoice.get("hosted_invoice_url") or "",
               "product": settings.EMAIL_PRODUCT_NAME}
    subject = render_to_string(f"{TEMPLATES[kind]}_subject.txt", context).strip()
    body = render_to_string(f"{TEMPLATES[kind]}.txt", context)
    return outbox_write(channel=Channel.EMAIL, kind=kind, customer=customer, source_event=event,
                        dedupe_key=f"email:{kind.removeprefix('email_')}:{invoice['id']}",
                        payload={"to": customer.email, "subject": subject, "body": body})


def customer_notification(event: StripeEvent) -> str:
    """Handler ``customer_notification``."""
    if event.type not in ("invoice.payment_failed", "invoice.paid", "invoice.payment_succeeded"):
        return f"nothing to do: no customer email for {event.type}"
    customer = customer_for_event(event)
    if customer is None:
        return "nothing to do: no canonical customer for this event"
    invoice = event.data_object
    if not invoice.get("id"):
        return "nothing to do: the invoice has no id"
    if not customer.email:
        return "not sent: the customer has no email address"
    if event.type == "invoice.payment_failed":
        row, created = _queue(PAYMENT_FAILED, customer=customer, event=event, invoice=invoice)
    else:
        if not OutboxMessage.objects.filter(
                dedupe_key=f"email:payment_failed:{invoice['id']}").exists():
            return "nothing to do: no failure email was sent for this invoice"
        row, created = _queue(PAYMENT_RECOVERED, customer=customer, event=event, invoice=invoice)
    return f"{row.kind} {'queued' if created else 'already queued'} (#{row.pk})"


def deliver_email(message: OutboxMessage) -> Delivered:
    payload = message.payload
    if not payload.get("to"):
        raise PermanentError("no recipient address", user_message="the customer has no email")
    try:
        send_mail(payload["subject"], payload["body"], settings.DEFAULT_FROM_EMAIL,
                  [payload["to"]])
    except smtplib.SMTPAuthenticationError as exc:
        raise ConfigurationError(f"SMTP login refused: {exc.smtp_code}",
                                 user_message="the mail server refused our login") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError("recipient refused by the mail server",
                             user_message="the customer's address was refused") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise RetryableError(f"mail server: {exc.__class__.__name__}: {exc}") from exc
    return Delivered(f"emailed {message.kind.removeprefix('email_')}")
