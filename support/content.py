"""What a ticket says: enough for support to act without opening Stripe, and never card
data or secrets (only ids, amounts and statuses are read; free text is masked)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from audit.services import mask_secrets
from billing.events import charge_id_of, recent_events
from config.money import format_money
from config.stripe_dashboard import stripe_dashboard_url
from customers.models import Customer


def amount_of(obj: Mapping[str, Any]) -> str:
    amount = obj.get("amount_due", obj.get("amount"))
    if not isinstance(amount, int):
        return "-"
    return format_money(amount, str(obj.get("currency") or ""))


def ticket_body(
    customer: Customer,
    *,
    obj: Mapping[str, Any] | None = None,
    livemode: bool | None = None,
    summary: str = "",
    related: Iterable[str] = (),
) -> str:
    """The ticket's text. ``livemode`` None: links in the mode of our Stripe key.
    ``related``: more Stripe ids to link (an invoice's charge where its shape no longer
    names it)."""
    obj = obj or {}
    # Ids, amounts and statuses come from fields we pick; free text (a name, a summary)
    # is masked in case someone typed a card number into it.
    lines = [mask_secrets(summary)] if summary else []
    lines += [
        f"Customer: {customer.pk} ({mask_secrets(customer.display_name)})",
        f"Plan: {customer.plan_name or customer.plan_id or '-'}",
        f"Billing status: {customer.get_status_display()}",
        f"Payment status: {customer.get_last_payment_status_display()}",
        f"Amount: {amount_of(obj)}",
        "",
        "Stripe:",
    ]
    ids = [customer.stripe_customer_id or "", customer.subscription_id, str(obj.get("id") or "")]
    ids += [charge_id_of(obj), *related]
    for object_id in dict.fromkeys(i for i in ids if i):
        link = stripe_dashboard_url(object_id, livemode=livemode)
        lines.append(f"- {object_id}: {link}" if link else f"- {object_id}")
    recent = recent_events(customer.stripe_customer_id or "", limit=5)
    if recent:
        lines += ["", "Last events:"]
        lines += [
            f"- {e.created:%Y-%m-%d %H:%M:%S} {e.type} ({e.event_id})" for e in recent if e.created
        ]
    return "\n".join(lines)
