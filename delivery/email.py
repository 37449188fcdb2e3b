"""The built-in ``email`` channel: one outbox row, one email through Django's email backend.

Every email Switchboard sends (customer emails, refund decisions, alerts) is an outbox
row first, so a mail server outage is retried like any other vendor and a retried cause
never sends twice. Payload: ``to`` (an address or a list), ``subject``, ``body``.
"""

from __future__ import annotations

import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from delivery.errors import ConfigurationError, PermanentError, RetryableError
from delivery.models import OutboxMessage
from delivery.senders import EMAIL, Delivered


def email_payload(*, to: str | list[str], subject: str, body: str) -> dict[str, Any]:
    """The payload of an ``email`` row (the one shape ``deliver_email`` reads)."""
    recipients = [to] if isinstance(to, str) else sorted(set(to))
    return {"to": [address for address in recipients if address], "subject": subject, "body": body}


def deliver_email(message: OutboxMessage) -> Delivered:
    payload = message.payload
    recipients = payload.get("to") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    if not recipients:
        raise PermanentError("no recipient address", user_message="the email has no recipient")
    try:
        send_mail(
            payload.get("subject", ""),
            payload.get("body", ""),
            settings.DEFAULT_FROM_EMAIL,
            recipients,
        )
    except smtplib.SMTPAuthenticationError as exc:
        raise ConfigurationError(
            f"SMTP login refused: {exc.smtp_code}", user_message="the mail server refused our login"
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(
            "recipient refused by the mail server", user_message="the address was refused"
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise RetryableError(f"mail server: {exc.__class__.__name__}: {exc}") from exc
    return Delivered(f"emailed {message.kind.removeprefix('email_')}")


__all__ = ["EMAIL", "deliver_email", "email_payload"]
