"""The life of a finance action row, shared by refunds and subscription actions.

Every finance action goes the same way, in this order, so a crash anywhere leaves a
state the next attempt can finish and a retry can never make Stripe act twice:

1. ``action_open``: one committed ``FinanceAction`` per form submission (``key``); a double
   submit gets the existing row back and calls nothing.
2. ``action_send``: Stripe is called *outside* any transaction, with the row's
   idempotency key. Success -> ``submitted`` (+ Stripe object id), audited. A refusal ->
   ``failed`` with the message in plain words, audited as a failed attempt, nothing else
   changed. No answer (timeout) -> stays ``requested``, to be sent again with the same key.
3. The confirming webhook marks it ``confirmed`` (billing/confirmations.py).

``action_resend`` sends a row left ``requested`` by a lost answer again, same key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import codes
from audit.services import audit_record
from billing import permissions
from billing.adapters import stripe_client
from billing.adapters.stripe_client import StripeActionError
from billing.models import ActionKind, ActionState, FinanceAction

SUCCESS_CODES = {
    ActionKind.REFUND: codes.BILLING_REFUND_ISSUED,
    ActionKind.CHANGE_PLAN: codes.BILLING_PLAN_CHANGED,
    ActionKind.CANCEL_NOW: codes.BILLING_SUBSCRIPTION_CANCELED,
    ActionKind.CANCEL_AT_PERIOD_END: codes.BILLING_SUBSCRIPTION_CANCELED,
    ActionKind.RESUME: codes.BILLING_SUBSCRIPTION_RESUMED,
}


def failure_code(kind: str) -> str:
    return (
        codes.BILLING_REFUND_FAILED
        if kind == ActionKind.REFUND
        else codes.BILLING_SUBSCRIPTION_ACTION_FAILED
    )


def submission_key(value: Any) -> uuid.UUID:
    """The form's one-time submission id, or a clear error for a forged one."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise ValidationError("This form has expired or was altered; open it again.") from None


def action_find(key: uuid.UUID, *, kind: str, customer_id: Any) -> FinanceAction | None:
    """The action already made from this submission (a double submit), if any."""
    existing = FinanceAction.objects.filter(key=key).first()
    if existing is not None and (existing.kind != kind or existing.customer_id != customer_id):
        raise ValidationError("This form was already used for another action; open it again.")
    return existing


def action_open(
    *, key: uuid.UUID, kind: str, customer: Any, actor: Any | None, **fields: Any
) -> tuple[FinanceAction, bool]:
    """Create the row (state ``requested``) inside the caller's transaction.

    Returns (row, created). Two concurrent submits of one form race on the unique ``key``:
    the loser gets the winner's row.
    """
    try:
        with transaction.atomic():
            action = FinanceAction.objects.create(
                key=key,
                kind=kind,
                customer=customer,
                requested_by=actor,
                stripe_customer_id=customer.stripe_customer_id or "",
                idempotency_key=f"switchboard-{kind}-{key}",
                **fields,
            )
    except IntegrityError:
        return FinanceAction.objects.get(key=key), False
    return action, True


# Our reason codes that Stripe has a reason of its own for; the rest travel in metadata.
STRIPE_REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}


def stripe_call(action: FinanceAction) -> dict[str, Any]:
    """The one Stripe request an action row stands for, with the row's idempotency key."""
    params = action.params
    key = action.idempotency_key
    if action.kind == ActionKind.REFUND:
        return stripe_client.refund_create(
            charge_id=action.charge_id,
            amount=int(action.amount or 0),
            idempotency_key=key,
            reason=action.reason_code if action.reason_code in STRIPE_REFUND_REASONS else None,
            metadata={"switchboard_action": str(action.key), "reason_code": action.reason_code},
            # A marketplace order's destination charge (billing/orders.py refund_params).
            **(params.get("connect") or {}),
        )
    sub = action.stripe_subscription_id
    if action.kind == ActionKind.CHANGE_PLAN:
        return stripe_client.subscription_modify(
            sub,
            idempotency_key=key,
            proration_behavior=params["proration"],
            items=[{"id": params["item_id"], "plan": params["plan_id"]}],
        )
    if action.kind == ActionKind.CANCEL_NOW:
        return stripe_client.subscription_cancel(sub, idempotency_key=key)
    if action.kind == ActionKind.CANCEL_AT_PERIOD_END:
        return stripe_client.subscription_modify(
            sub, idempotency_key=key, cancel_at_period_end=True
        )
    if action.kind == ActionKind.RESUME:
        return stripe_client.subscription_modify(
            sub, idempotency_key=key, cancel_at_period_end=False
        )
    raise ValueError(f"unknown finance action kind {action.kind!r}")


# ``action_send``'s default actor: the person who asked for the action (its first send).
REQUESTER: Any = object()


def action_send(
    *,
    action_pk: int,
    actor: Any = REQUESTER,
    audit_data: dict[str, Any] | None = None,
    call: Callable[[FinanceAction], dict[str, Any]] = stripe_call,
) -> FinanceAction:
    """Call Stripe for a ``requested`` row and record the answer (see module docstring).

    ``actor`` is who makes this send happen, recorded as the audit entry's actor: the
    requester for the first send, whoever clicked "Send again" for a resend (the
    requester stays in the entry's data). Raises ``StripeActionError`` after recording a
    refusal, so the caller shows it.
    """
    action = FinanceAction.objects.select_related("requested_by").get(pk=action_pk)
    if action.state != ActionState.REQUESTED:
        return action
    if actor is REQUESTER:
        actor = action.requested_by
    base = {
        "kind": action.kind,
        "idempotency_key": action.idempotency_key,
        "action": action.pk,
        "reason_code": action.reason_code,
        "reason": action.note,
        "requested_by": (action.requested_by.get_username() if action.requested_by else None),
        **(audit_data or action.params.get("audit") or {}),
    }
    try:
        result = call(action)
    except StripeActionError as exc:
        with transaction.atomic():
            action = FinanceAction.objects.select_for_update().get(pk=action_pk)
            action.error_message = exc.user_message[:500]
            if not exc.outcome_unknown:
                action.state = ActionState.FAILED
                action.failed_at = timezone.now()
            action.save(update_fields=["error_message", "state", "failed_at"])
            audit_record(
                action=failure_code(action.kind),
                actor=actor,
                target=action.customer,
                data={**base, "error": str(exc)[:500], "outcome_unknown": exc.outcome_unknown},
            )
        raise
    with transaction.atomic():
        action = FinanceAction.objects.select_for_update().get(pk=action_pk)
        if action.state == ActionState.REQUESTED:
            action.state = ActionState.SUBMITTED
            action.stripe_object_id = str(result.get("id") or "")[:255]
            action.submitted_at = timezone.now()
            action.error_message = ""
            action.save(
                update_fields=["state", "stripe_object_id", "submitted_at", "error_message"]
            )
            audit_record(
                action=SUCCESS_CODES[action.kind],
                actor=actor,
                target=action.customer,
                data={**base, "stripe_object_id": action.stripe_object_id},
            )
    return action


def action_resend(*, actor: Any, action_id: int) -> FinanceAction:
    """Send an action whose Stripe answer was lost again, with the same idempotency key."""
    action = FinanceAction.objects.select_related("customer").get(pk=action_id)
    allowed = {
        ActionKind.REFUND: permissions.can_issue_refund(actor, action.customer)
        or permissions.can_approve_refund(actor),
        ActionKind.CHANGE_PLAN: permissions.can_change_plan(actor, action.customer),
    }.get(action.kind, permissions.can_cancel_subscription(actor, action.customer))
    permissions.require(allowed, user=actor, action=f"resend_{action.kind}", target=action.customer)
    return action_send(action_pk=action.pk, actor=actor)
