"""Keep dj-stripe's models (its mirror of Stripe objects) in step with events.

dj-stripe syncs an object from a Stripe payload; it fetches related objects it has not
seen yet (a customer's first subscription brings its plan and product), so a new
customer costs a few API calls once and later events usually none. The canonical
customer never waits for this: the mirror is its own handler run, retried alone.

dj-stripe 2.11 reads a few fields newer API versions moved or removed (an invoice's
``paid`` and ``subscription``, a subscription's ``current_period_end``): the snapshot is
given to it with those filled in from their new place (``shapes.for_djstripe``), so its
admin pages and its ``Subscription.current_period_end`` work on every version we accept.

Never regress: a ``MirrorCursor`` per object remembers the ``created`` time of the
snapshot written last. An older snapshot is skipped; a different event from the same
second cannot be ordered, so the object is then re-read from Stripe (one API call).
The cursor row is locked while the snapshot is written, so two workers mirroring events
of one object take turns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from djstripe import models as djstripe_models

from billing import shapes
from billing.adapters import stripe_client
from billing.models import MirrorCursor

MODELS: dict[str, Any] = {
    "customer": djstripe_models.Customer,
    "subscription": djstripe_models.Subscription,
    "invoice": djstripe_models.Invoice,
    "payment_intent": djstripe_models.PaymentIntent,
    "charge": djstripe_models.Charge,
    "dispute": djstripe_models.Dispute,
    "refund": djstripe_models.Refund,
    "checkout.session": djstripe_models.Session,
    "product": djstripe_models.Product,
}


def sync_object(obj: dict[str, Any], *, event_id: str = "", created: datetime | None = None) -> str:
    kind = obj.get("object", "")
    model = MODELS.get(kind)
    if model is None:
        return f"dj-stripe mirror: {kind!r} objects are not mirrored"
    object_id = obj.get("id") or ""
    with transaction.atomic():
        cursor = None
        if object_id and created is not None:
            # Locked as it is read (one query when it exists, the usual case).
            cursor, _ = MirrorCursor.objects.select_for_update().get_or_create(
                object_id=object_id, defaults={"event_created": created, "event_id": event_id}
            )
            if cursor.event_created > created:
                return (
                    f"dj-stripe mirror: {kind} {object_id} already holds a newer snapshot "
                    f"({cursor.event_id}); skipped"
                )
            if (
                cursor.event_created == created
                and cursor.event_id not in ("", event_id)
                and stripe_client.can_retrieve(kind)
            ):
                obj = stripe_client.retrieve(kind, object_id)
        model.sync_from_stripe_data(
            stripe.convert_to_stripe_object(shapes.for_djstripe(obj)),
            api_key=settings.STRIPE_SECRET_KEY,
        )
        if cursor is not None:
            cursor.event_created, cursor.event_id = created, event_id
            cursor.save(update_fields=["event_created", "event_id"])
    return f"dj-stripe mirror: {kind} {object_id} synced"
