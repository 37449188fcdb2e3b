"""What the downstream handlers need from the Stripe pipeline: the event's customer."""

from __future__ import annotations

from billing.models import HandlerRun, RunStatus, StripeEvent
from billing.status_map import PROJECTION
from customers.models import Customer


class ProjectionPending(RuntimeError):
    """The event has not been applied to the customer yet: the handler run is retried
    (with the pipeline's backoff) instead of syncing a stale state."""


def customer_for_event(event: StripeEvent) -> Customer | None:
    """The canonical customer of ``event``, after the projection applied it.

    Read fresh from the database: the projection may have learnt the Stripe customer
    (disputes name it only through the charge) after ``event`` was loaded.
    """
    projection = (HandlerRun.objects.filter(event_id=event.pk, handler=PROJECTION)
                  .values_list("status", flat=True).first())
    if projection is not None and projection != RunStatus.SUCCEEDED:
        raise ProjectionPending(f"the projection of {event.stripe_id} has not succeeded yet")
    stripe_customer_id = (StripeEvent.objects.filter(pk=event.pk)
                          .values_list("stripe_customer_id", flat=True).first())
    if not stripe_customer_id:
        return None
    return Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
