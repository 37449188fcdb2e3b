"""Reads of the pipeline's state (for commands, the console and the state API)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.forms.models import model_to_dict

from billing.models import HandlerRun, StripeEvent
from config.money import format_money
from customers.models import Customer


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def events_in_other_api_versions(start: Any, end: Any) -> dict[str, int]:
    """Events received in [start, end) rendered in an API version other than
    ``STRIPE_API_VERSION``, per version. They are processed like the others (billing/
    shapes.py reads every version we accept); a count that grows says an endpoint in
    Stripe is still on an old version. Thin events carry no version and are not counted."""
    from django.conf import settings
    from django.db.models import Count

    rows = (
        StripeEvent.objects.filter(received_at__gte=start, received_at__lt=end)
        .exclude(api_version__in=["", settings.STRIPE_API_VERSION])
        .values_list("api_version")
        .annotate(n=Count("id"))
    )
    return {version: n for version, n in rows}


def customer_state(*, stripe_customer_id: str, limit: int = 20) -> dict[str, Any] | None:
    """The canonical record of a Stripe customer with its recent events and handler runs;
    None when no canonical customer is linked to that id."""
    customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
    if customer is None:
        return None
    record = {k: _iso(v) for k, v in model_to_dict(customer).items()}
    record.update(
        id=str(customer.pk),
        created_at=_iso(customer.created_at),
        updated_at=_iso(customer.updated_at),
    )
    events = list(
        StripeEvent.objects.filter(stripe_customer_id=stripe_customer_id).order_by(
            "-created", "-id"
        )[:limit]
    )
    runs = (
        HandlerRun.objects.filter(event__in=events)
        .select_related("event")
        .order_by("-event__created", "event_id", "id")
    )
    return {
        "customer": record,
        "events": [
            {
                "id": e.stripe_id,
                "type": e.type,
                "created": _iso(e.created),
                "received_at": _iso(e.received_at),
                "status": e.status,
                "deliveries": e.delivery_count,
            }
            for e in events
        ],
        "handler_runs": [
            {
                "event": r.event.stripe_id,
                "handler": r.handler,
                "status": r.status,
                "attempts": r.attempts,
                "note": r.note,
                "last_error": r.last_error,
                "next_attempt_at": _iso(r.next_attempt_at) if r.status == "failed" else None,
                "finished_at": _iso(r.finished_at),
            }
            for r in runs
        ],
    }


# --- finance actions (the customer page's finance panel and the action pages) ----------------


def customer_finance(*, customer: Customer, user: Any) -> dict[str, Any]:
    """What the finance panel shows: Stripe's charges and subscription of the customer
    (read live: Stripe is the truth), the actions and requests in flight, and which
    buttons this user may see. Stripe being unreachable is a message, not an error page."""
    from billing import permissions
    from billing.adapters.stripe_client import StripeActionError, finance_list, finance_read
    from billing.models import FinanceAction, RefundRequest, RefundRequestStatus
    from billing.refunds import refunded_here
    from billing.shapes import subscription_period_end
    from billing.subscriptions import current_plan, plan_label
    from customers.permissions import can_view_finance_details

    can = {
        "view": permissions.can_view_billing(user, customer),
        "refund": permissions.can_issue_refund(user, customer)
        or permissions.can_request_refund(user, customer),
        "issue_refund": permissions.can_issue_refund(user, customer),
        "change_plan": permissions.can_change_plan(user, customer),
        "cancel": permissions.can_cancel_subscription(user, customer),
        "resume": permissions.can_resume_subscription(user, customer),
        "approve": permissions.can_approve_refund(user),
    }
    data: dict[str, Any] = {
        "can": can,
        "customer": customer,
        "charges": [],
        "subscription": None,
        "error": "",
    }
    if not can["view"]:
        return data
    # Refunds and staff finance decisions are finance details: support agents see only
    # what they asked for themselves (their requests, and the actions made of them).
    actions = FinanceAction.objects.filter(customer=customer)
    pending = RefundRequest.objects.filter(customer=customer, status=RefundRequestStatus.PENDING)
    if not can_view_finance_details(user):
        actions = actions.filter(Q(requested_by=user) | Q(refund_request__requested_by=user))
        pending = pending.filter(requested_by=user)
    data["actions"] = list(actions.select_related("requested_by")[:10])
    data["pending_requests"] = list(pending.select_related("requested_by"))
    if not customer.stripe_customer_id:
        return data
    disputed = _disputed_charges(customer.stripe_customer_id)
    try:
        for charge in finance_list("charge", customer=customer.stripe_customer_id, limit=10):
            amount = int(charge.get("amount") or 0)
            refunded = max(int(charge.get("amount_refunded") or 0), refunded_here(charge["id"]))
            is_disputed = bool(charge.get("disputed")) or charge["id"] in disputed
            refundable = (
                max(amount - refunded, 0)
                if charge.get("status") == "succeeded" and not is_disputed
                else 0
            )
            data["charges"].append(
                {
                    "id": charge["id"],
                    "created": _ts(charge.get("created")),
                    "amount": format_money(amount, charge.get("currency") or ""),
                    "refunded": format_money(refunded, charge.get("currency") or "")
                    if refunded
                    else "",
                    "refundable": refundable,
                    "refundable_label": format_money(refundable, charge.get("currency") or ""),
                    "status": "disputed" if is_disputed else charge.get("status"),
                    "description": charge.get("description") or "",
                }
            )
        if customer.subscription_id:
            sub = finance_read("subscription", customer.subscription_id)
            _, plan = current_plan(sub)
            data["subscription"] = {
                "id": sub["id"],
                "status": sub.get("status"),
                "plan": plan_label(plan),
                "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
                "current_period_end": _ts(subscription_period_end(sub)),
                "ended": sub.get("status") in ("canceled", "incomplete_expired"),
            }
    except StripeActionError as exc:
        data["error"] = exc.user_message
    return data


def _disputed_charges(stripe_customer_id: str) -> set[str]:
    """Charges with a dispute Stripe has not closed in the merchant's favour, from the
    event inbox: Stripe refuses a refund on them, so the panel offers none."""
    from billing.models import StripeEvent

    latest: dict[str, str] = {}
    for payload in (
        StripeEvent.objects.filter(
            stripe_customer_id=stripe_customer_id, type__startswith="charge.dispute."
        )
        .order_by("created", "id")
        .values_list("payload", flat=True)
    ):
        obj = (payload.get("data") or {}).get("object") or {}
        if obj.get("charge"):
            latest[str(obj["charge"])] = str(obj.get("status") or "")
    return {charge for charge, status in latest.items() if status != "won"}


def _ts(value: Any) -> Any:
    from billing.projection import ts

    return ts(value)


def refund_requests_for(*, user: Any) -> dict[str, list[Any]]:
    """Approvers: every pending request, and the latest decided ones. Everyone else: the
    requests they may see through their object permission (their own)."""
    from guardian.shortcuts import get_objects_for_user

    from billing import permissions
    from billing.models import RefundRequest, RefundRequestStatus

    base = RefundRequest.objects.select_related("customer", "requested_by", "decided_by")
    if permissions.can_approve_refund(user):
        visible = base
    else:
        visible = get_objects_for_user(
            user, permissions.VIEW_REFUNDREQUEST, klass=base, accept_global_perms=False
        )
    return {
        "pending": list(visible.filter(status=RefundRequestStatus.PENDING).order_by("created_at")),
        "decided": list(
            visible.exclude(status=RefundRequestStatus.PENDING).order_by("-decided_at", "-id")[:20]
        ),
    }
