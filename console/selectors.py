"""Reads about one customer: the account state (API, answerer, page header) and the 360 timeline.

``account_state`` is the single definition of what a caller may be told about a
customer, including how sure we are (``confidence``):

- ``needs_review`` (with reasons): sources disagree or a sync is broken — the billing
  status is ``needs_review``, the record is a match conflict or matched by email only,
  another record without a Stripe link has the same email, a
  handler run of one of the customer's Stripe events is dead, a CRM/helpdesk delivery
  for the customer is dead or paused, or the last reconcile found Stripe and Switchboard
  disagreeing about the customer and no Stripe event has confirmed the state since.
  Callers must hand over to a person.
- ``stale``: a Stripe event for the customer was received but is not applied yet (the
  state is older than the newest event), or Stripe has not confirmed the state for
  ``API_STATE_STALE_HOURS`` (or never).
- ``confirmed``: otherwise.

``refund_pending`` says a refund is asked for or on its way (a request waiting for a
second person's approval, or a refund sent to Stripe and not confirmed yet): refund
questions go to a person until it is decided.

The customer page's header (console/summary.py) and timeline (console/story.py) build on
these; support agents do not see finance-only items (see ``FINANCE_ONLY_*``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from billing.models import (
    ActionKind,
    ActionState,
    EventStatus,
    FinanceAction,
    HandlerRun,
    ReconcileRun,
    RefundRequest,
    RefundRequestStatus,
    RunStatus,
    StripeEvent,
)
from billing.status_map import PROJECTION
from config.stripe_dashboard import stripe_dashboard_url
from crm_sync.sync import CHANNEL as CRM
from customers.models import BillingStatus, Customer, MatchState
from delivery.models import OutboxMessage, OutboxState
from delivery.senders import channel_label
from support.models import Ticket, TicketStatus
from support.services import CHANNEL as HELPDESK

# What support agents do not see on the customer page: money moved back, the staff
# decisions about it, and reconcile repairs (disputes are shown, without amounts).
FINANCE_ONLY_AUDIT_PREFIXES = ("billing.refund.", "billing.reconcile.", "billing.action.")
FINANCE_ONLY_QUEUES = ("disputes",)

ACCESS_ENTITLED, ACCESS_GRACE, ACCESS_REVOKED = "entitled", "grace", "revoked"
_ACCESS = {
    BillingStatus.ACTIVE: ACCESS_ENTITLED,
    BillingStatus.TRIALING: ACCESS_ENTITLED,
    # Behind on payment, disputed, or under review: keep access while it is sorted out.
    BillingStatus.PAST_DUE: ACCESS_GRACE,
    BillingStatus.DISPUTED: ACCESS_GRACE,
    BillingStatus.NEEDS_REVIEW: ACCESS_GRACE,
}
CONFIRMED, STALE, NEEDS_REVIEW = "confirmed", "stale", "needs_review"
REVIEW_CHANNELS = (CRM, HELPDESK)


def access_for(customer: Customer) -> str:
    return _ACCESS.get(customer.status, ACCESS_REVOKED)


def resolve_customer(ref: str) -> Customer | None:
    """A customer by Stripe customer id (``cus_…``), internal UUID or product user id."""
    ref = (ref or "").strip()
    if not ref or len(ref) > 255:
        return None
    if ref.startswith("cus_"):
        return Customer.objects.filter(stripe_customer_id=ref).first()
    try:
        found = Customer.objects.filter(pk=uuid.UUID(ref)).first()
    except ValueError:
        found = None
    return found or Customer.objects.filter(product_user_id=ref).first()


def confidence(customer: Customer, *, now: datetime | None = None) -> tuple[str, list[str]]:
    """(confidence, reasons) for the customer's billing state; see the module docstring."""
    now = now or timezone.now()
    reasons: list[str] = []
    if customer.status == BillingStatus.NEEDS_REVIEW:
        reasons.append(
            "the billing status is marked for review"
            + (f": {customer.review_reason}" if customer.review_reason else "")
        )
    if customer.match_state == MatchState.CONFLICT:
        reasons.append(
            "the record conflicts with Stripe"
            + (f": {customer.review_reason}" if customer.review_reason else "")
        )
    elif customer.match_state == MatchState.MATCHED_BY_EMAIL:
        reasons.append("the Stripe customer was matched by email only and is not verified")
    if _unlinked_namesakes(customer):
        reasons.append(
            "another customer record without a Stripe link has the same email: the billing "
            "may be that person's, linked to neither record"
        )
    if customer.stripe_customer_id:
        dead = list(
            HandlerRun.objects.filter(
                status=RunStatus.DEAD,
                event__stripe_customer_id=customer.stripe_customer_id,
            ).values_list("handler", flat=True)[:5]
        )
        if dead:
            reasons.append(f"processing of a Stripe event is dead ({', '.join(sorted(set(dead)))})")
    broken = list(
        OutboxMessage.objects.filter(
            customer=customer,
            channel__in=REVIEW_CHANNELS,
            state__in=[OutboxState.DEAD, OutboxState.PAUSED],
        ).values_list("channel", "state")[:5]
    )
    for channel, state in sorted(set(broken)):
        reasons.append(f"the {channel_label(channel)} sync is {state}")
    drift = _reconcile_drift(customer)
    if drift:
        reasons.append(
            f"Stripe and Switchboard disagreed at the last reconcile ({', '.join(drift)}) "
            "and no Stripe event has confirmed the state since"
        )
    if reasons:
        return NEEDS_REVIEW, reasons
    unapplied = unapplied_events(customer)
    if unapplied:
        return STALE, [
            f"{unapplied} Stripe event(s) for this customer received but not applied yet"
        ]
    confirmed = customer.billing_confirmed_at
    if confirmed is None:
        return STALE, ["Stripe has never confirmed this customer's state"]
    limit = timedelta(hours=settings.API_STATE_STALE_HOURS)
    if now - confirmed > limit:
        return STALE, [
            f"last confirmed by Stripe {confirmed:%Y-%m-%d %H:%M %Z}, over "
            f"{settings.API_STATE_STALE_HOURS} hours ago"
        ]
    return CONFIRMED, []


def _unlinked_namesakes(customer: Customer) -> bool:
    """Another record, not linked to Stripe, with this customer's email. Whether Stripe's
    customer is matched to the product's record by email depends on which event came
    first (an invoice or subscription event carries no email), so the read side checks:
    two records for one person are a conflict. Exact and lower-case matches (the email
    index serves both)."""
    email = (customer.email or "").strip()
    if not email:
        return False
    return (
        Customer.objects.filter(
            email__in=sorted({email, email.lower()}),
            stripe_customer_id__isnull=True,
            erased_at__isnull=True,
        )
        .exclude(pk=customer.pk)
        .exists()
    )


def unapplied_events(customer: Customer) -> int:
    """The customer's Stripe events received but not applied to the record yet: not
    processed (waiting, or failed and to be retried), or processed with the customer
    projection still to run. Until they are, the state is older than what Stripe said."""
    if not customer.stripe_customer_id:
        return 0
    waiting = Q(status__in=[EventStatus.RECEIVED, EventStatus.FAILED]) | Q(
        handler_runs__handler=PROJECTION,
        handler_runs__status__in=[RunStatus.PENDING, RunStatus.FAILED, RunStatus.STARTED],
    )
    return (
        StripeEvent.objects.filter(stripe_customer_id=customer.stripe_customer_id)
        .filter(waiting)
        .values("pk")
        .distinct()
        .count()
    )


def _reconcile_drift(customer: Customer) -> list[str]:
    """The drift categories the last completed reconcile listed for the customer, unless
    a Stripe event confirmed the state after that reconcile started (the drift it saw
    is about an older state then)."""
    if not customer.stripe_customer_id:
        return []
    run = (
        ReconcileRun.objects.filter(finished_at__isnull=False, error="")
        .order_by("-started_at", "-pk")
        .only("started_at", "details")
        .first()
    )
    if run is None:
        return []
    confirmed = customer.billing_confirmed_at
    if confirmed is not None and confirmed > run.started_at:
        return []
    return sorted(
        {
            str(item.get("category"))
            for item in run.details or []
            if item.get("stripe_customer_id") == customer.stripe_customer_id
        }
    )


def refund_pending(customer: Customer) -> bool:
    """A refund asked for and not decided, or sent to Stripe and not confirmed yet."""
    return (
        RefundRequest.objects.filter(customer=customer, status=RefundRequestStatus.PENDING).exists()
        or FinanceAction.objects.filter(
            customer=customer,
            kind=ActionKind.REFUND,
            state__in=[ActionState.REQUESTED, ActionState.SUBMITTED],
        ).exists()
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def account_state(customer: Customer, *, now: datetime | None = None) -> dict[str, Any]:
    """The account-state API's payload (see console/openapi.json). No email, name or
    card data: callers identify the customer themselves."""
    now = now or timezone.now()
    level, reasons = confidence(customer, now=now)
    return {
        "customer": {
            "id": str(customer.pk),
            "stripe_customer_id": customer.stripe_customer_id,
            "product_user_id": customer.product_user_id,
        },
        "billing_status": customer.status,
        "plan": {"id": customer.plan_id or None, "name": customer.plan_name or None},
        "access": access_for(customer),
        "current_period_end": _iso(customer.current_period_end),
        "cancel_at_period_end": customer.cancel_at_period_end,
        "last_payment": {
            "status": customer.last_payment_status,
            "at": _iso(customer.last_payment_at),
            "invoice_id": customer.latest_invoice_id or None,
        },
        "refund_pending": refund_pending(customer),
        "open_tickets": Ticket.objects.filter(
            customer=customer, status__in=[TicketStatus.OPEN, TicketStatus.PENDING]
        ).count(),
        "onboarding_state": customer.onboarding_state,
        "confirmed_at": _iso(customer.billing_confirmed_at),
        "confidence": level,
        "confidence_reasons": reasons,
        "generated_at": now.isoformat(),
    }


# --- the customer page header -----------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if value else ""


def _link(template: str, value: str) -> str | None:
    return template.replace("{id}", value) if template and value else None


def _pending_sync(customer: Customer, channel: str, what: str) -> str:
    """Why a linked id is missing, in words, from the newest outbox row of that channel."""
    row = (
        OutboxMessage.objects.filter(customer=customer, channel=channel)
        .exclude(state=OutboxState.SUPERSEDED)
        .order_by("-created_at", "-id")
        .first()
    )
    if row is None:
        return f"No {what} yet: nothing has been sent to create one."
    attempts = f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}"
    if row.state in (OutboxState.PENDING, OutboxState.FAILED, OutboxState.DELIVERING):
        tail = f"; last error: {row.last_error[:120]}" if row.last_error else ""
        return f"No {what} yet: delivery pending since {_when(row.created_at)}, {attempts}{tail}."
    if row.state in (OutboxState.DEAD, OutboxState.PAUSED):
        return (
            f"No {what}: the delivery is {row.state} after {attempts}"
            f" ({row.last_error[:120] or 'no error recorded'})."
        )
    connected = {"crm": settings.HUBSPOT_TOKEN, "helpdesk": settings.ZENDESK_TOKEN}.get(channel)
    if row.state == OutboxState.DELIVERED and not connected:
        setting = "HUBSPOT_TOKEN" if channel == "crm" else "ZENDESK_TOKEN"
        return (
            f"No {what} id: no vendor is connected ({setting} is not set), so deliveries "
            "are kept locally and have no vendor id."
        )
    return f"No {what} id stored, though the last delivery was {row.get_state_display().lower()}."


def customer_links(customer: Customer) -> list[dict[str, Any]]:
    """The customer's linked ids in the other systems, each with a link or why it is
    missing (for the customer page's header)."""
    return [
        {
            "label": "Stripe customer",
            "value": customer.stripe_customer_id,
            "url": stripe_dashboard_url(customer.stripe_customer_id or ""),
            "empty": "Not linked to a Stripe customer yet: it links itself when Stripe first "
            "sends an event for this customer.",
        },
        {
            "label": "CRM contact",
            "value": customer.crm_contact_id,
            "url": _link(settings.CRM_CONTACT_URL_TEMPLATE, customer.crm_contact_id or ""),
            "empty": _pending_sync(customer, CRM, "CRM contact")
            if not customer.crm_contact_id
            else "",
        },
        {
            "label": "Helpdesk user",
            "value": customer.helpdesk_user_id,
            "url": _link(settings.HELPDESK_USER_URL_TEMPLATE, customer.helpdesk_user_id or ""),
            "empty": _pending_sync(customer, HELPDESK, "helpdesk user")
            if not customer.helpdesk_user_id
            else "",
        },
        {
            "label": "Product user",
            "value": customer.product_user_id,
            "url": None,
            "empty": "No product user id: the product has not told us its own id for this customer.",
        },
    ]
