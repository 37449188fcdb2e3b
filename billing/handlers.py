"""What one handler run of a Stripe event does, by the run's name.

Billing's own handlers (the customer projection and the dj-stripe mirror) take the
``StripeEvent`` row. Every other run belongs to a subscriber of billing's published
events (billing/events.py: crm_sync, support): it gets a ``BillingEvent`` built here,
after the projection of the same event succeeded.

A handler returns a short note saying what it did, and raises to fail (the run is
retried alone, with backoff). Handlers must be idempotent: a run may be retried after a
worker died half-way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from billing import events, status_map
from billing.models import HandlerRun, RunStatus, StripeEvent
from billing.orders import order_project
from billing.projection import Result, project
from customers.models import Customer

# Bookkeeping fields of the projection that say nothing to a subscriber.
_GUARD_FIELDS = {
    "last_event_created",
    "last_event_id",
    "payment_event_created",
    "subscription_event_created",
    "profile_event_created",
    "billing_confirmed_at",
    "updated_at",
}


@dataclass
class Outcome:
    note: str
    changes: list[str] = field(default_factory=list)


Handler = Callable[[StripeEvent], "str | Outcome"]


def customer_projection(event: StripeEvent) -> Outcome:
    result = project(
        event_id=event.stripe_id or "",
        event_type=event.snapshot_type,
        created=event.created,
        obj=event.data_object,
    )
    if result.stripe_customer_id and not event.stripe_customer_id:
        # Disputes name their customer only through the charge: remember who it was.
        StripeEvent.objects.filter(pk=event.pk).update(stripe_customer_id=result.stripe_customer_id)
    changes = projection_changes(result)
    # A one-time payment's order (billing/orders.py), in the same transaction.
    order = order_project(
        event_id=event.stripe_id or "",
        event_type=event.snapshot_type,
        created=event.created,
        obj=event.data_object,
    )
    changes += order.changes
    note = "; ".join(n for n in (result.note, order.note) if n)
    # Finance actions (billing/confirmations.py): the event that proves a refund or a
    # subscription change happened closes its action row, in this same transaction.
    from billing.confirmations import actions_confirm_from_event

    confirmed = actions_confirm_from_event(event)
    if confirmed:
        return Outcome(f"{note}; confirmed finance action(s) {confirmed}", changes)
    return Outcome(note, changes)


def projection_changes(result: Result) -> list[str]:
    """The customer fields a projection changed that subscribers care about."""
    return [name for name in result.changed if name not in _GUARD_FIELDS]


def stripe_mirror(event: StripeEvent) -> str:
    """Keep dj-stripe's copy of the object in step, from the event's snapshot."""
    from billing.adapters import djstripe_mirror

    return djstripe_mirror.sync_object(
        event.data_object, event_id=event.stripe_id or "", created=event.created
    )


HANDLERS: dict[str, Handler] = {
    status_map.PROJECTION: customer_projection,
    status_map.MIRROR: stripe_mirror,
}


def published(event: StripeEvent) -> events.BillingEvent:
    """The event as subscribers see it, once the projection has applied it.

    Read fresh from the database: the projection may have learnt the Stripe customer
    (disputes name it only through the charge) after ``event`` was loaded.
    """
    found = published_many([event])
    if event.pk not in found:
        raise events.NotProjectedYet(f"the projection of {event.stripe_id} has not succeeded yet")
    return found[event.pk]


def published_many(stripe_events: Iterable[StripeEvent]) -> dict[int, events.BillingEvent]:
    """:func:`published` for many events in three queries, by event pk. An event whose
    projection run exists but has not succeeded is left out (its subscribers must wait)."""
    by_pk = {event.pk: event for event in stripe_events}
    if not by_pk:
        return {}
    projections = {
        event_id: (status, changes)
        for event_id, status, changes in HandlerRun.objects.filter(
            event_id__in=by_pk, handler=status_map.PROJECTION
        ).values_list("event_id", "status", "changes")
    }
    stripe_customers = dict(
        StripeEvent.objects.filter(pk__in=by_pk).values_list("pk", "stripe_customer_id")
    )
    wanted = {value for value in stripe_customers.values() if value}
    customers: dict[str, Any] = {}
    if wanted:
        for stripe_customer_id, pk in (
            Customer.objects.filter(stripe_customer_id__in=wanted)
            .order_by("pk")
            .values_list("stripe_customer_id", "pk")
        ):
            customers.setdefault(stripe_customer_id, pk)  # the first, as .first() chose
    found: dict[int, events.BillingEvent] = {}
    for pk, event in by_pk.items():
        projection = projections.get(pk)
        if projection is not None and projection[0] != RunStatus.SUCCEEDED:
            continue
        stripe_customer_id = stripe_customers.get(pk) or ""
        found[pk] = events.BillingEvent(
            event_id=event.stripe_id or "",
            type=event.snapshot_type,
            created=event.created,
            livemode=event.livemode,
            customer_id=customers.get(stripe_customer_id) if stripe_customer_id else None,
            stripe_customer_id=stripe_customer_id,
            object=event.data_object,
            changes=tuple(projection[1] or ()) if projection else (),
            account=str(event.payload.get("account") or ""),
        )
    return found


def published_for_runs(runs: Iterable[HandlerRun]) -> dict[int, events.BillingEvent]:
    """What the subscriber runs of one drain batch will see, read once for the batch (three
    queries instead of three per run), by event pk. An event whose projection has not
    succeeded yet is left out (a projection run of this batch is claimed, so not yet
    succeeded): its subscriber runs read fresh (:func:`published`), after it ran."""
    return published_many(run.event for run in runs if run.handler not in HANDLERS)


def handle(
    name: str, event: StripeEvent, *, billing_event: events.BillingEvent | None = None
) -> Outcome:
    """Run the handler or subscriber called ``name`` for ``event``. ``billing_event``: what
    :func:`published_for_runs` read for it in this batch (read fresh when None)."""
    handler = HANDLERS.get(name)
    if handler is not None:
        result = handler(event)
        return result if isinstance(result, Outcome) else Outcome(result or "")
    sub = events.subscription(name)
    if sub is None:
        raise LookupError(f"no handler or subscriber named {name!r}")
    return Outcome(sub.fn(billing_event or published(event)) or "")
