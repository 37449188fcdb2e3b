"""Close finance actions when Stripe's confirming webhook is processed.

Called by the ``customer_projection`` handler (billing/handlers.py) in the same
transaction as the projection, so "confirmed" always means our customer record already
shows what Stripe did. Idempotent: only ``submitted`` rows are confirmed, once.

- ``charge.refunded``: the refund actions on that charge whose refund id is in the
  charge's ``refunds`` list (older API versions embed it; when it is absent, every sent
  refund of the charge submitted before the event is taken as confirmed).
- ``customer.subscription.updated``: plan changes, cancel-at-period-end and resume of
  that subscription whose requested state the event's object shows, and that were sent
  no later than the event (an older event cannot confirm a newer action).
- ``customer.subscription.deleted``: cancellations of that subscription.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from audit import codes
from audit.services import audit_record
from billing.models import ActionKind, ActionState, FinanceAction, StripeEvent
from billing.subscriptions import current_plan
from config import problems


def _sent_by(qs: QuerySet[FinanceAction], created: datetime | None) -> QuerySet[FinanceAction]:
    if created is None:
        return qs
    # Stripe's created has one-second resolution: an action sent during that second counts.
    return qs.filter(submitted_at__lt=created + timedelta(seconds=1))


def _candidates(event: StripeEvent) -> list[FinanceAction]:
    obj = event.data_object
    event_type = event.snapshot_type
    submitted = FinanceAction.objects.select_for_update().filter(state=ActionState.SUBMITTED)
    if event_type == "charge.refunded" and obj.get("id"):
        refunds = submitted.filter(kind=ActionKind.REFUND, charge_id=obj["id"])
        listed = (obj.get("refunds") or {}).get("data")
        if listed is not None:
            ids = {r.get("id") for r in listed if r.get("status", "succeeded") == "succeeded"}
            return list(refunds.filter(stripe_object_id__in=ids))
        return list(_sent_by(refunds, event.created))
    if not event_type.startswith("customer.subscription.") or not obj.get("id"):
        return []
    subs = submitted.filter(stripe_subscription_id=obj["id"])
    if event_type == "customer.subscription.deleted":
        return list(subs.filter(kind__in=[ActionKind.CANCEL_NOW, ActionKind.CANCEL_AT_PERIOD_END]))
    if event_type != "customer.subscription.updated":
        return []
    matched = []
    for action in _sent_by(subs, event.created):
        if action.kind == ActionKind.CHANGE_PLAN:
            ok = current_plan(obj)[1].get("id") == action.params.get("plan_id")
        elif action.kind == ActionKind.CANCEL_AT_PERIOD_END:
            ok = bool(obj.get("cancel_at_period_end"))
        elif action.kind == ActionKind.RESUME:
            ok = not obj.get("cancel_at_period_end") and obj.get("status") != "canceled"
        else:
            ok = False
        if ok:
            matched.append(action)
    return matched


def actions_confirm_from_event(event: StripeEvent) -> list[int]:
    """Mark the actions this event confirms; returns their ids (for the run's note)."""
    confirmed = []
    now = timezone.now()
    for action in _candidates(event):
        action.state = ActionState.CONFIRMED
        action.confirmed_at = now
        action.confirmed_event_id = event.stripe_id or ""
        action.save(update_fields=["state", "confirmed_at", "confirmed_event_id"])
        audit_record(
            action=codes.BILLING_ACTION_CONFIRMED,
            actor=None,
            target=action.customer,
            data={
                "action": action.pk,
                "kind": action.kind,
                "stripe_object_id": action.stripe_object_id,
                "stripe_event_id": event.stripe_id,
                "event_type": event.type,
                "idempotency_key": action.idempotency_key,
                "requested_by": (action.requested_by.get_username() if action.requested_by else ""),
            },
        )
        confirmed.append(action.pk)
        problems.resolve(key=_alert_key(action))
    return confirmed


def _alert_key(action: FinanceAction) -> str:
    return f"finance_unconfirmed:{action.pk}"


def actions_alert_unconfirmed(*, now: datetime | None = None) -> int:
    """Raise an alert (once) for every action Stripe accepted but whose confirming
    webhook has not arrived within ``FINANCE_CONFIRMATION_ALERT_MINUTES``: a lost webhook
    or a broken endpoint leaves the console showing an old state. Run by the scheduler."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.FINANCE_CONFIRMATION_ALERT_MINUTES)
    raised = 0
    for action in (
        FinanceAction.objects.filter(state=ActionState.SUBMITTED, submitted_at__lte=cutoff)
        .select_related("customer")
        .order_by("submitted_at")[:100]
    ):
        if problems.report(
            key=_alert_key(action),
            title=(
                f"{action.get_kind_display()} #{action.pk} for {action.customer} is not "
                "confirmed by Stripe"
            ),
            detail=(
                f"Stripe accepted it at {action.submitted_at:%Y-%m-%d %H:%M} UTC "
                f"({action.stripe_object_id}) but no confirming webhook was processed. "
                "Check the webhook endpoint and the event inbox, or run reconcile."
            ),
        ):
            raised += 1
    return raised
