"""Subscription actions: change plan, cancel (now or at period end), resume.

Each checks permission first, reads the subscription from Stripe (the truth, not our
copy) to check the action makes sense, writes the action row, then asks Stripe with the
row's idempotency key (billing/actions.py). Our customer record is *not* changed here:
``customer.subscription.updated`` / ``.deleted`` change it through the pipeline and mark
the action confirmed (billing/confirmations.py).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from billing import actions, permissions, shapes
from billing.adapters import stripe_client
from billing.models import ActionKind, FinanceAction
from config.money import format_money
from customers.models import Customer

PRORATIONS = {
    "create_prorations": "Prorate: credit the unused time of the old plan and charge the new "
    "plan for the rest of this period on the next invoice",
    "none": "No proration: the new price applies from the next period",
    "always_invoice": "Invoice now: prorate and invoice the difference immediately",
}


def plan_label(plan: dict[str, Any]) -> str:
    if not plan:
        return "-"
    interval = plan.get("interval") or (plan.get("recurring") or {}).get("interval") or ""
    amount = plan.get("amount", plan.get("unit_amount"))
    name = plan.get("nickname") or plan.get("id")
    return f"{name} ({format_money(amount, plan.get('currency') or '')}/{interval})"


def current_plan(subscription: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(subscription item id, its plan) of a one-item subscription."""
    item_id, plan = shapes.subscription_plan(subscription)
    return item_id, dict(plan)


def live_subscription(customer: Customer) -> dict[str, Any]:
    """The customer's subscription as Stripe has it now; refuses one that has ended."""
    if not customer.subscription_id:
        raise ValidationError("This customer has no subscription.")
    sub = stripe_client.finance_read("subscription", customer.subscription_id)
    if sub.get("status") in ("canceled", "incomplete_expired"):
        raise ValidationError("This subscription has already ended in Stripe.")
    return sub


def _note(note: str) -> str:
    if not (note or "").strip():
        raise ValidationError("Say in a few words why; it is kept in the audit log.")
    return note.strip()


def _start(
    *,
    actor: Any,
    customer: Customer,
    kind: str,
    submission_key: Any,
    note: str,
    allowed: bool,
    verb: str,
) -> tuple[Any, FinanceAction | None, str]:
    permissions.require(allowed, user=actor, action=verb, target=customer)
    key = actions.submission_key(submission_key)
    return key, actions.action_find(key, kind=kind, customer_id=customer.pk), _note(note)


def _open_and_send(
    *,
    key: Any,
    kind: str,
    customer: Customer,
    actor: Any,
    sub: dict[str, Any],
    note: str,
    params: dict[str, Any],
) -> FinanceAction:
    with transaction.atomic():
        action, created = actions.action_open(
            key=key,
            kind=kind,
            customer=customer,
            actor=actor,
            stripe_subscription_id=sub["id"],
            note=note,
            params=params,
        )
    if not created:
        return action
    return actions.action_send(action_pk=action.pk)


def _state(sub: dict[str, Any]) -> dict[str, Any]:
    _, plan = current_plan(sub)
    return {
        "status": sub.get("status"),
        "plan": plan.get("id"),
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
    }


def subscription_change_plan(
    *, actor: Any, customer_id: Any, plan_id: str, proration: str, note: str, submission_key: Any
) -> FinanceAction:
    """Move the subscription to ``plan_id`` with the chosen proration behaviour."""
    customer = Customer.objects.get(pk=customer_id)
    key, existing, note = _start(
        actor=actor,
        customer=customer,
        kind=ActionKind.CHANGE_PLAN,
        submission_key=submission_key,
        note=note,
        verb="change_plan",
        allowed=permissions.can_change_plan(actor, customer),
    )
    if existing is not None:
        return existing
    if proration not in PRORATIONS:
        raise ValidationError("Choose how the change is prorated.")
    sub = live_subscription(customer)
    item_id, plan = current_plan(sub)
    if plan.get("id") == plan_id:
        raise ValidationError("The subscription is already on that plan.")
    new_plan = stripe_client.finance_read("plan", plan_id)
    before = _state(sub)
    return _open_and_send(
        key=key,
        kind=ActionKind.CHANGE_PLAN,
        customer=customer,
        actor=actor,
        sub=sub,
        note=note,
        params={
            "plan_id": plan_id,
            "item_id": item_id,
            "proration": proration,
            "audit": {
                "subscription": sub["id"],
                "proration": proration,
                "before": before,
                "after": {**before, "plan": plan_id},
                "plans": [plan_label(plan), plan_label(new_plan)],
            },
        },
    )


def subscription_cancel(
    *, actor: Any, customer_id: Any, at_period_end: bool, note: str, submission_key: Any
) -> FinanceAction:
    """Cancel now (Stripe ends it at once) or at the end of the paid period."""
    kind = ActionKind.CANCEL_AT_PERIOD_END if at_period_end else ActionKind.CANCEL_NOW
    customer = Customer.objects.get(pk=customer_id)
    key, existing, note = _start(
        actor=actor,
        customer=customer,
        kind=kind,
        note=note,
        submission_key=submission_key,
        verb="cancel_subscription",
        allowed=permissions.can_cancel_subscription(actor, customer),
    )
    if existing is not None:
        return existing
    sub = live_subscription(customer)
    if at_period_end and sub.get("cancel_at_period_end"):
        raise ValidationError("This subscription is already set to end at the period end.")
    before = _state(sub)
    after = (
        {**before, "cancel_at_period_end": True}
        if at_period_end
        else {**before, "status": "canceled"}
    )
    return _open_and_send(
        key=key,
        kind=kind,
        customer=customer,
        actor=actor,
        sub=sub,
        note=note,
        params={
            "audit": {
                "subscription": sub["id"],
                "at_period_end": at_period_end,
                "current_period_end": shapes.subscription_period_end(sub),
                "before": before,
                "after": after,
            }
        },
    )


def subscription_resume(
    *, actor: Any, customer_id: Any, note: str, submission_key: Any
) -> FinanceAction:
    """Withdraw a pending cancellation (cancel at period end)."""
    customer = Customer.objects.get(pk=customer_id)
    key, existing, note = _start(
        actor=actor,
        customer=customer,
        kind=ActionKind.RESUME,
        submission_key=submission_key,
        note=note,
        verb="resume_subscription",
        allowed=permissions.can_resume_subscription(actor, customer),
    )
    if existing is not None:
        return existing
    sub = live_subscription(customer)
    if not sub.get("cancel_at_period_end"):
        raise ValidationError("This subscription has no pending cancellation to undo.")
    before = _state(sub)
    return _open_and_send(
        key=key,
        kind=ActionKind.RESUME,
        customer=customer,
        actor=actor,
        sub=sub,
        note=note,
        params={
            "audit": {
                "subscription": sub["id"],
                "before": before,
                "after": {**before, "cancel_at_period_end": False},
            }
        },
    )
