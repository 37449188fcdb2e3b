"""The handler each event fans out into, by name.

A handler takes the ``StripeEvent`` and returns a short note saying what it did. It
raises to fail (the run is retried alone, with backoff). Handlers must be idempotent:
a run may be retried after a worker died half-way.

``crm_update``, ``helpdesk_ticket`` and ``customer_notification`` are the downstream
syncs (crm_sync/, support/): they write outbox rows and tickets in the handler run's
transaction; the ``sync`` queue delivers them.
"""

from __future__ import annotations

from collections.abc import Callable

from billing import status_map
from billing.models import StripeEvent
from billing.projection import project
from crm_sync.sync import crm_update
from support.emails import customer_notification
from support.handlers import helpdesk_ticket

Handler = Callable[[StripeEvent], str]


def customer_projection(event: StripeEvent) -> str:
    result = project(event_id=event.stripe_id or "", event_type=event.type,
                     created=event.created, obj=event.data_object)
    if result.stripe_customer_id and not event.stripe_customer_id:
        # Disputes name their customer only through the charge: remember who it was.
        StripeEvent.objects.filter(pk=event.pk).update(stripe_customer_id=result.stripe_customer_id)
    # Finance actions (billing/confirmations.py): the event that proves a refund or a
    # subscription change happened closes its action row, in this same transaction.
    from billing.confirmations import actions_confirm_from_event

    confirmed = actions_confirm_from_event(event)
    if confirmed:
        return f"{result.note}; confirmed finance action(s) {confirmed}"
    return result.note


def stripe_mirror(event: StripeEvent) -> str:
    """Keep dj-stripe's copy of the object in step, from the event's snapshot."""
    from billing.adapters import djstripe_mirror

    return djstripe_mirror.sync_object(event.data_object, event_id=event.stripe_id or "",
                                       created=event.created)


HANDLERS: dict[str, Handler] = {
    status_map.PROJECTION: customer_projection,
    status_map.MIRROR: stripe_mirror,
    status_map.CRM: crm_update,
    status_map.HELPDESK: helpdesk_ticket,
    status_map.NOTIFY: customer_notification,
}
