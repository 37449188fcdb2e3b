"""Project one Stripe event onto the canonical customer, never regressing newer state.

Called by the ``customer_projection`` handler and by ``reconcile --repair``. Events for
one Stripe customer are serialised by a PostgreSQL advisory lock on the customer id, and
the customer row is locked while it is read and written, so two workers never
interleave their reads and writes of one customer.

Three field groups each remember the ``created`` time of the last event applied to them:
status fields (``last_event_created``), payment fields (``payment_event_created``) and
profile fields (``profile_event_created``). An event older than that is not applied. An
event from the same second that would change the state is ambiguous (Stripe's clock
has one-second resolution and events arrive unordered); the projection then re-reads
the object from Stripe, the one API call it ever makes, and applies what Stripe says now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing import status_map
from billing.adapters import stripe_client
from config.locks import advisory_xact_lock
from config.money import format_money
from customers.models import Customer, MatchState

logger = logging.getLogger(__name__)


def ts(value: Any) -> datetime | None:
    """A Stripe unix timestamp as an aware datetime (None stays None)."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def stripe_customer_id_of(obj: dict[str, Any]) -> str:
    """The Stripe customer an object belongs to (its own id for a customer)."""
    if obj.get("object") == "customer":
        return obj.get("id") or ""
    customer = obj.get("customer")
    if isinstance(customer, dict):
        return customer.get("id") or ""
    return customer or ""


def resolve_stripe_customer_id(obj: dict[str, Any]) -> str:
    """Like :func:`stripe_customer_id_of`, also for objects that name their customer only
    through a charge (disputes): from an earlier event about that charge, dj-stripe's
    mirror, or, last, one Stripe API call."""
    found = stripe_customer_id_of(obj)
    charge_id = obj.get("charge")
    if found or not charge_id:
        return found
    if isinstance(charge_id, dict):
        return stripe_customer_id_of(charge_id)
    from djstripe.models import Charge

    from billing.models import StripeEvent

    known = (
        StripeEvent.objects.filter(object_id=charge_id)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    if known:
        return known
    mirrored = Charge.objects.filter(id=charge_id).values_list("customer__id", flat=True).first()
    if mirrored:
        return mirrored
    return stripe_customer_id_of(stripe_client.retrieve("charge", charge_id))


def _email_of(obj: dict[str, Any]) -> str:
    if obj.get("object") == "customer":
        return obj.get("email") or ""
    details = obj.get("customer_details") or {}
    return details.get("email") or obj.get("customer_email") or obj.get("receipt_email") or ""


def _subscription_id_of(obj: dict[str, Any]) -> str:
    if obj.get("object") == "subscription":
        return obj.get("id") or ""
    sub = obj.get("subscription")
    if isinstance(sub, dict):
        return sub.get("id") or ""
    if sub:
        return sub
    parent = (obj.get("parent") or {}).get("subscription_details") or {}
    return parent.get("subscription") or ""


def subscription_fields(sub: dict[str, Any]) -> dict[str, Any]:
    """Customer fields a subscription object determines."""
    items = ((sub.get("items") or {}).get("data")) or []
    first = items[0] if items else {}
    price = first.get("price") or first.get("plan") or sub.get("plan") or {}
    plan_id = price.get("id") or ""
    name = price.get("nickname") or ""
    if not name and (price.get("amount") is not None or price.get("unit_amount") is not None):
        amount = price.get("unit_amount", price.get("amount")) or 0
        interval = (price.get("recurring") or {}).get("interval") or price.get("interval") or ""
        name = f"{format_money(amount, price.get('currency') or '')}/{interval}".strip("/ ")
    period_end = sub.get("current_period_end") or first.get("current_period_end")
    latest_invoice = sub.get("latest_invoice")
    if isinstance(latest_invoice, dict):
        latest_invoice = latest_invoice.get("id")
    fields = {
        "subscription_id": sub.get("id") or "",
        "plan_id": plan_id,
        "plan_name": name,
        "current_period_end": ts(period_end),
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
    }
    if latest_invoice:
        fields["latest_invoice_id"] = latest_invoice
    return fields


@dataclass
class Result:
    customer_id: Any
    stripe_customer_id: str
    note: str
    changed: list[str]
    api_calls: int = 0


def _find_or_link(stripe_customer_id: str, obj: dict[str, Any]) -> tuple[Customer, list[str]]:
    """The canonical customer for a Stripe customer, created or linked the first time."""
    customer = (
        Customer.objects.select_for_update().filter(stripe_customer_id=stripe_customer_id).first()
    )
    if customer is not None:
        return customer, []
    email = _email_of(obj)
    candidates = (
        list(
            Customer.objects.select_for_update().filter(
                email__iexact=email, stripe_customer_id__isnull=True
            )[:2]
        )
        if email
        else []
    )
    if len(candidates) == 1:
        customer = candidates[0]
        customer.stripe_customer_id = stripe_customer_id
        customer.match_state = MatchState.MATCHED_BY_EMAIL
        customer.review_reason = (
            f"Linked to Stripe customer {stripe_customer_id} by email only; confirm it is "
            "the same person."
        )
        return customer, ["stripe_customer_id", "match_state", "review_reason"]
    customer = Customer(
        stripe_customer_id=stripe_customer_id,
        email=email,
        name=(obj.get("name") or "") if obj.get("object") == "customer" else "",
        match_state=MatchState.LINKED_BY_STRIPE_ID,
    )
    if len(candidates) > 1:
        customer.match_state = MatchState.CONFLICT
        customer.review_reason = (
            f"Several customers without a Stripe link have the email {email}; none was "
            "linked automatically."
        )
    customer.save(force_insert=True)
    return customer, ["created"]


_ENDED = {"canceled", "incomplete_expired"}
_LIVE = {"active", "trialing", "past_due", "unpaid", "paused", "disputed"}


def _newer(event_created: datetime | None, applied: datetime | None) -> str:
    if applied is None or event_created is None:
        return "newer"
    if event_created > applied:
        return "newer"
    if event_created < applied:
        return "older"
    return "same"


def _status_and_subscription_values(
    obj: dict[str, Any], status: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split what an object says into the two guarded groups.

    Status group (guard ``last_event_created``): status and the latest invoice, which
    invoice and subscription events both speak about. Subscription group (guard
    ``subscription_event_created``): which subscription, plan, period end and
    cancel-at-period-end, which only a subscription snapshot knows. Separate guards
    keep a plan change applied when a newer invoice event was processed first.
    """
    status_values: dict[str, Any] = {}
    sub_values: dict[str, Any] = {}
    if obj.get("object") == "subscription":
        sub_values = subscription_fields(obj)
        latest_invoice = sub_values.pop("latest_invoice_id", None)
        if latest_invoice:
            status_values["latest_invoice_id"] = latest_invoice
    elif obj.get("object") == "invoice" and obj.get("id"):
        status_values["latest_invoice_id"] = obj["id"]
    if status is not None:
        status_values["status"] = status
    return status_values, sub_values


def _differs(customer: Customer, values: dict[str, Any]) -> bool:
    return any(getattr(customer, key) != value for key, value in values.items())


def _assign(customer: Customer, values: dict[str, Any]) -> list[str]:
    """Set the fields that differ; returns their names."""
    changed = [key for key, value in values.items() if getattr(customer, key) != value]
    for key in changed:
        setattr(customer, key, values[key])
    return changed


def project(
    *,
    event_id: str,
    event_type: str,
    created: datetime | None,
    obj: dict[str, Any],
    refetch: bool = True,
) -> Result:
    """Apply one event's object snapshot to its customer. Returns what changed and why.

    ``refetch=False`` (reconcile, which already holds fresh objects) never calls Stripe.
    """
    rule = status_map.rule_for(event_type)
    if rule is None:
        return Result(None, "", f"{event_type}: not in the status map; stored only", [])
    calls_before = stripe_client.api_calls.total
    stripe_customer_id = resolve_stripe_customer_id(obj)
    if not stripe_customer_id:
        return Result(None, "", "the event names no Stripe customer: nothing to project", [])

    # No savepoint: callers (the handler run, reconcile) already hold a transaction, and
    # any error here fails the whole of it.
    with transaction.atomic(savepoint=False):
        advisory_xact_lock(stripe_customer_id)
        customer, changed = _find_or_link(stripe_customer_id, obj)
        notes: list[str] = []
        now = timezone.now()

        # Profile fields (the customer object itself).
        # An erased customer's personal data is never written back by a later event.
        if (
            obj.get("object") == "customer"
            and event_type != "customer.deleted"
            and customer.erased_at is None
        ):
            order = _newer(created, customer.profile_event_created)
            if order == "older":
                notes.append("profile: older than applied state, skipped")
            else:
                for field, value in (
                    ("email", obj.get("email") or ""),
                    ("name", obj.get("name") or ""),
                ):
                    if value and getattr(customer, field) != value:
                        setattr(customer, field, value)
                        changed.append(field)
                customer.profile_event_created = max(
                    filter(None, [created, customer.profile_event_created])
                )
                changed.append("profile_event_created")

        outcome = status_map.decide(rule, obj, customer.status)
        # A rule that speaks about status advances the status guard even when the status
        # stays the same: a paid invoice at T makes a payment failure from before T stale.
        is_subscription = obj.get("object") == "subscription"
        if rule.status is not None or is_subscription:
            status_values, sub_values = _status_and_subscription_values(obj, outcome.status)
            order = _newer(created, customer.last_event_created)
            sub_order = _newer(created, customer.subscription_event_created)
            event_sub = _subscription_id_of(obj)
            superseded = (
                event_sub
                and customer.subscription_id
                and event_sub != customer.subscription_id
                and status_values.get("status") in _ENDED
                and customer.status in _LIVE
            )
            if superseded:
                # The end of an older subscription must not cancel the current one.
                notes.append(
                    f"status: {event_sub} ended but {customer.subscription_id} is "
                    "current; not applied"
                )
                status_values, sub_values = {}, {}
            if order == "older" and status_values:
                notes.append(
                    f"status: event older than applied {customer.last_event_id}; not applied"
                )
                status_values = {}
            if sub_order == "older" and sub_values:
                notes.append("subscription: older than applied snapshot; not applied")
                sub_values = {}
            ambiguous = (
                order == "same"
                and _differs(customer, status_values)
                and customer.last_event_id != event_id
            ) or (sub_order == "same" and _differs(customer, sub_values))
            sub_id = event_sub or customer.subscription_id
            if (
                refetch
                and sub_id
                and (ambiguous or (rule.rederive_from_subscription and order != "older"))
            ):
                # Stripe's clock has one-second resolution: two different states from the
                # same second cannot be ordered, so ask Stripe what is true now.
                fresh = stripe_client.retrieve("subscription", sub_id)
                status_values, sub_values = _status_and_subscription_values(
                    fresh, status_map.SUBSCRIPTION_STATUS.get(fresh.get("status", ""))
                )
                notes.append(
                    "status: re-read the subscription from Stripe"
                    + (" (same-second conflict)" if ambiguous else "")
                )
            if status_values:
                changed += _assign(customer, status_values)
                if "status" in status_values:
                    onboarding = status_map.ONBOARDING_FOR_STATUS.get(status_values["status"])
                    if onboarding:
                        changed += _assign(customer, {"onboarding_state": onboarding})
                if created and (
                    customer.last_event_created is None or created >= customer.last_event_created
                ):
                    customer.last_event_created = created
                    customer.last_event_id = event_id
                    changed += ["last_event_created", "last_event_id"]
            if sub_values:
                changed += _assign(customer, sub_values)
                if created and (
                    customer.subscription_event_created is None
                    or created > customer.subscription_event_created
                ):
                    customer.subscription_event_created = created
                    changed.append("subscription_event_created")

        if outcome.payment is not None:
            order = _newer(created, customer.payment_event_created)
            if order == "older":
                notes.append("payment: older than applied state, skipped")
            else:
                if customer.last_payment_status != outcome.payment:
                    customer.last_payment_status = outcome.payment
                    changed.append("last_payment_status")
                customer.last_payment_at = created or now
                customer.payment_event_created = created
                changed += ["last_payment_at", "payment_event_created"]

        customer.billing_confirmed_at = now
        if "created" in changed:
            customer.save()
        else:
            customer.save(
                update_fields=sorted(set(changed) | {"billing_confirmed_at", "updated_at"})
            )
    note = "; ".join(notes) or (
        "applied: " + ", ".join(sorted(set(changed))) if changed else "no change"
    )
    return Result(
        customer.pk,
        stripe_customer_id,
        note,
        sorted(set(changed)),
        stripe_client.api_calls.total - calls_before,
    )
