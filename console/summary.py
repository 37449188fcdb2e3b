"""The customer page's header: the three questions a support agent opens a customer for.

*Is this customer paying?* (plan and price, status, access, next renewal), *why were they
charged?* (the last payment, its amount and what it paid for), *what happened last?* (the
last staff action with who and why, open tickets, the CRM/helpdesk links and how sure we
are). One source of truth: the projected ``Customer`` row and the event inbox it was
built from; Stripe's live view is a separate panel compared against this one
(``live_differences``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from audit import codes
from audit.models import AuditEntry
from billing.models import StripeEvent
from console import selectors
from console.story import (
    AUDIT_WORDS,
    describe_event,
    invoice_purpose,
    money_words,
    plan_words,
    subscription_plan,
)
from customers.models import BillingStatus, Customer, MatchState, PaymentStatus
from customers.permissions import CHANGE_CUSTOMER, VIEW_BILLING, can_view_finance_details
from support.models import Ticket, TicketStatus

# Status -> badge colour class (console/static/console/console.css).
STATUS_TONE = {
    BillingStatus.ACTIVE: "good",
    BillingStatus.TRIALING: "good",
    BillingStatus.PAST_DUE: "warn",
    BillingStatus.INCOMPLETE: "warn",
    BillingStatus.PAUSED: "warn",
    BillingStatus.NEEDS_REVIEW: "warn",
    BillingStatus.UNPAID: "bad",
    BillingStatus.DISPUTED: "bad",
    BillingStatus.CANCELED: "quiet",
    BillingStatus.INCOMPLETE_EXPIRED: "quiet",
    BillingStatus.REFUNDED: "quiet",
    BillingStatus.NONE: "quiet",
}
PAYMENT_TONE = {
    PaymentStatus.SUCCEEDED: "good",
    PaymentStatus.FAILED: "bad",
    PaymentStatus.ACTION_REQUIRED: "warn",
    PaymentStatus.DISPUTED: "bad",
    PaymentStatus.REFUNDED: "quiet",
    PaymentStatus.PARTIALLY_REFUNDED: "quiet",
}
ACCESS_WORDS = {
    selectors.ACCESS_ENTITLED: ("Has access", "good"),
    selectors.ACCESS_GRACE: ("Access kept for now (grace)", "warn"),
    selectors.ACCESS_REVOKED: ("No access to paid features", "bad"),
}
PAYMENT_EVENTS = (
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "charge.dispute.created",
    "charge.dispute.closed",
    "charge.refunded",
)
SUBSCRIPTION_EVENTS = ("customer.subscription.created", "customer.subscription.updated")


def _day(value: datetime | None) -> str:
    return f"{timezone.localtime(value):%d %b %Y}" if value else ""


def _latest(customer: Customer, types: tuple[str, ...], **extra: Any) -> StripeEvent | None:
    if not customer.stripe_customer_id:
        return None
    return (
        StripeEvent.objects.filter(
            stripe_customer_id=customer.stripe_customer_id, type__in=types, **extra
        )
        .order_by("-created", "-id")
        .first()
    )


def plan_and_price(customer: Customer) -> str:
    """ "Pro — 49.00 USD/month" from the newest subscription event of the current
    subscription, else the projected plan name."""
    extra = {"object_id": customer.subscription_id} if customer.subscription_id else {}
    event = _latest(customer, SUBSCRIPTION_EVENTS, **extra)
    words = plan_words(subscription_plan(event.data_object)) if event else ""
    return words or customer.plan_name or customer.plan_id or ""


def _staff_cancel(customer: Customer) -> AuditEntry | None:
    return (
        AuditEntry.objects.filter(
            target_type=ContentType.objects.get_for_model(Customer),
            target_id=str(customer.pk),
            action__in=[codes.BILLING_SUBSCRIPTION_CANCELED, codes.BILLING_SUBSCRIPTION_RESUMED],
        )
        .order_by("-created_at", "-id")
        .first()
    )


def renewal(customer: Customer) -> str:
    end = customer.current_period_end
    if customer.status in (BillingStatus.CANCELED, BillingStatus.INCOMPLETE_EXPIRED):
        return "Subscription ended"
    if not end:
        return ""
    if customer.status in (BillingStatus.PAST_DUE, BillingStatus.UNPAID):
        retrying = customer.status == BillingStatus.PAST_DUE
        return (
            "Renewal not paid: "
            + ("Stripe is retrying the card" if retrying else "Stripe stopped retrying")
            + f" (period ends {_day(end)})"
        )
    if customer.cancel_at_period_end:
        entry = _staff_cancel(customer)
        if entry and entry.action == codes.BILLING_SUBSCRIPTION_CANCELED:
            reason = str((entry.data or {}).get("reason") or "")
            by = f"canceled by {entry.actor_label or 'staff'}" + (f" ({reason})" if reason else "")
        else:
            # Stripe says it ends, and no staff member here asked for it: the customer did
            # (billing portal) or someone in Stripe's dashboard.
            by = "set to cancel in Stripe"
        return f"Ends on {_day(end)}, does not renew: {by}"
    return f"Renews on {_day(end)}"


def last_payment(customer: Customer, finance: bool) -> dict[str, Any]:
    status = customer.last_payment_status
    out: dict[str, Any] = {
        "status": customer.get_last_payment_status_display(),
        "tone": PAYMENT_TONE.get(status, "quiet"),
        "at": customer.last_payment_at,
        "amount": "",
        "purpose": "",
    }
    if status == PaymentStatus.NONE:
        out["status"] = "No payment yet"
        return out
    invoice = _latest(
        customer,
        (
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.payment_action_required",
        ),
    )
    if invoice is not None:
        obj = invoice.data_object
        paid = invoice.type in ("invoice.paid", "invoice.payment_succeeded")
        out["amount"] = money_words(
            obj.get("amount_paid" if paid else "amount_due"), obj.get("currency")
        )
        out["purpose"] = invoice_purpose(obj)
    if status == PaymentStatus.DISPUTED or (
        finance and status in (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED)
    ):
        # Refunds are finance details; a dispute is told to everyone, its amount only to
        # finance (describe_event leaves it out for the others).
        types = PAYMENT_EVENTS[4:] if finance else PAYMENT_EVENTS[4:6]
        event = _latest(customer, types)
        if event is not None:
            title, detail, _ = describe_event(event, finance=finance)
            out["note"] = f"{title} ({detail})"
    return out


def last_staff_action(customer: Customer, finance: bool) -> dict[str, Any] | None:
    entries = AuditEntry.objects.filter(
        target_type=ContentType.objects.get_for_model(Customer),
        target_id=str(customer.pk),
        actor__isnull=False,
    )
    if not finance:
        for prefix in selectors.FINANCE_ONLY_AUDIT_PREFIXES:
            entries = entries.exclude(action__startswith=prefix)
    entry = entries.order_by("-created_at", "-id").first()
    if entry is None:
        return None
    data = entry.data or {}
    return {
        "who": entry.actor_label or "staff",
        "what": AUDIT_WORDS.get(entry.action, entry.action),
        "why": str(data.get("reason") or data.get("note") or ""),
        "at": entry.created_at,
    }


def customer_summary(customer: Customer, user: Any) -> dict[str, Any]:
    """Everything the header shows, for ``user`` (billing hidden without view_billing)."""
    finance = can_view_finance_details(user)
    level, reasons = selectors.confidence(customer)
    access_label, access_tone = ACCESS_WORDS[selectors.access_for(customer)]
    tickets = Ticket.objects.filter(
        customer=customer, status__in=[TicketStatus.OPEN, TicketStatus.PENDING]
    )
    if not finance:
        tickets = tickets.exclude(queue__slug__in=selectors.FINANCE_ONLY_QUEUES)
    open_tickets = list(tickets.select_related("queue").order_by("-created_at")[:5])
    return {
        "customer": customer,
        "show_billing": user.has_perm(VIEW_BILLING),
        "can_edit": user.has_perm(CHANGE_CUSTOMER),
        "edit_url": reverse("admin:customers_customer_change", args=[customer.pk]),
        "status": customer.get_status_display(),
        "status_tone": STATUS_TONE.get(customer.status, "quiet"),
        "plan": plan_and_price(customer),
        "renewal": renewal(customer),
        "access": access_label,
        "access_tone": access_tone,
        "last_payment": last_payment(customer, finance),
        "last_action": last_staff_action(customer, finance),
        "open_tickets": open_tickets,
        "open_ticket_count": tickets.count(),
        "confidence": level,
        "reasons": reasons,
        "confirmed_at": customer.billing_confirmed_at,
        "match": customer.get_match_state_display(),
        "match_tone": "good"
        if customer.match_state == MatchState.LINKED_BY_STRIPE_ID
        else ("warn" if customer.match_state != MatchState.UNLINKED else "quiet"),
        "links": selectors.customer_links(customer),
        "onboarding": customer.get_onboarding_state_display(),
    }


def live_differences(customer: Customer, live: dict[str, Any]) -> list[str]:
    """Where Stripe's live answer (billing's finance panel data) disagrees with the
    projected state this page shows: each is flagged, never silently contradicted."""
    diffs: list[str] = []
    sub = live.get("subscription")
    if sub and customer.subscription_id:
        if sub.get("status") and sub["status"] != customer.status:
            if not (customer.status == BillingStatus.DISPUTED and sub["status"] == "active"):
                diffs.append(
                    f"Stripe says the subscription is {sub['status']}; this page says "
                    f"{customer.get_status_display().lower()}."
                )
        if bool(sub.get("cancel_at_period_end")) != customer.cancel_at_period_end:
            diffs.append(
                "Stripe and this page disagree on whether the subscription cancels at the "
                "end of the period."
            )
    if customer.status == BillingStatus.DISPUTED:
        diffs.append(
            "A payment is disputed: the subscription may still be active in Stripe, but the "
            "money is contested. No refund is offered on the disputed payment."
        )
    return diffs
