"""The ``entitlement_update`` subscriber of billing's events, and what a dead
``customer.entitled`` delivery means (provisioning failed)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.events import BillingEvent
from delivery.models import OutboxMessage
from provisioning import dunning, states, webhooks

SUBSCRIBER = "entitlement_update"
# Every event that can change whether the customer is entitled, to which plan, or the
# dunning facts. The decision reads the projected customer (order-independent), so a
# replayed or late event changes nothing.
EVENT_TYPES = (
    "checkout.session.completed",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice_payment.paid",
    "charge.refunded",
)


def entitlement_update(event: BillingEvent) -> str:
    if event.customer_id is None:
        return "nothing to do: no canonical customer for this event"
    # No savepoint inside the handler run's transaction: a failure fails the whole run.
    with transaction.atomic(savepoint=False):
        customer, entitlement = states.locked(event.customer_id)
        if dunning.record(entitlement, event):
            entitlement.save()
        return states.sync(customer, entitlement, cause=event.cause, now=timezone.now())


def provisioning_dead(
    sender: Any,
    *,
    message_id: int,
    channel: str,
    kind: str,
    customer_id: Any,
    reason: str,
    **kwargs: Any,
) -> None:
    """``delivery.signals.message_dead`` receiver: a dead ``customer.entitled`` row
    means provisioning failed (in the transaction that marks the row dead)."""
    if channel != webhooks.CHANNEL or kind != webhooks.ENTITLED or not customer_id:
        return
    meta = (
        OutboxMessage.objects.filter(pk=message_id).values_list("payload", flat=True).first() or {}
    ).get("meta") or {}
    states.provisioning_failed(
        customer_id, generation=meta.get("generation"), reason=reason, cause=f"outbox:{message_id}"
    )
