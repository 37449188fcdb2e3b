"""Billing's part of erasing a customer and of retention: stored Stripe event payloads
lose the person's data (receiver of ``customers.signals.customer_erasing``), and old
payloads and succeeded handler runs are purged (``manage.py run_scheduler``).

An event row keeps its id, type, times and the ids it refers to, so de-duplication, the
timeline and the never-regress guards still work; the payload keeps only the object's id,
type and customer. Stripe itself is not asked to delete anything: the customer's payment
records there are the business's own records, erased (or not) in Stripe's dashboard.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.models import CustomerFacts, EventStatus, HandlerRun, RunStatus, StripeEvent
from billing.orders import orders_erase_buyer


def minimal_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with nothing but identifiers left."""
    obj = ((payload or {}).get("data") or {}).get("object") or {}
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return {
        "id": payload.get("id"),
        "type": payload.get("type"),
        "created": payload.get("created"),
        "erased": True,
        "data": {
            "object": {"id": obj.get("id"), "object": obj.get("object"), "customer": customer}
        },
    }


def events_scrub(sender: Any, *, customer_id: Any, stripe_customer_id: str, **kwargs: Any) -> None:
    for row in CustomerFacts.objects.filter(customer_id=customer_id):
        profile = row.facts.get("profile")
        if profile:
            row.facts["profile"] = {**profile, "email": "", "name": ""}
            row.save(update_fields=["facts", "updated_at"])
    orders_erase_buyer(customer_id)
    if not stripe_customer_id:
        return
    for event in StripeEvent.objects.filter(stripe_customer_id=stripe_customer_id).only(
        "pk", "payload", "resolved"
    ):
        StripeEvent.objects.filter(pk=event.pk).update(
            payload=minimal_payload(event.payload), resolved=minimal_resolved(event.resolved)
        )


def minimal_resolved(resolved: Any) -> dict[str, Any]:
    """An event's ``resolved`` without the object fetched for a thin event (it carries
    the person's data as the payload did); the looked-up ids (``refs``) stay."""
    refs = (resolved or {}).get("refs") if isinstance(resolved, dict) else None
    return {"refs": refs} if refs else {}


def event_payloads_purge(*, older_than: datetime, batch_size: int, max_batches: int = 50) -> int:
    """Reduce the payloads of processed events received before ``older_than`` to their
    identifiers, in batches. Returns events purged."""
    purged = 0
    for _ in range(max_batches):
        rows = list(
            StripeEvent.objects.filter(status=EventStatus.PROCESSED, received_at__lt=older_than)
            .exclude(payload__has_key="erased")
            .order_by("pk")
            .only("pk", "payload", "resolved")[:batch_size]
        )
        if not rows:
            break
        for row in rows:
            StripeEvent.objects.filter(pk=row.pk).update(
                payload=minimal_payload(row.payload), resolved=minimal_resolved(row.resolved)
            )
        purged += len(rows)
    return purged


def handler_runs_purge(*, older_than: datetime, batch_size: int, max_batches: int = 50) -> int:
    """Delete succeeded handler runs that finished before ``older_than``, in batches.
    Failed and dead runs stay for a person. Returns runs deleted."""
    deleted = 0
    for _ in range(max_batches):
        pks = list(
            HandlerRun.objects.filter(status=RunStatus.SUCCEEDED, finished_at__lt=older_than)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not pks:
            break
        deleted += HandlerRun.objects.filter(pk__in=pks).delete()[0]
    return deleted
