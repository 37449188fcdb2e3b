"""Keep dj-stripe's models (its mirror of Stripe objects) in step with events.

dj-stripe syncs an object from a Stripe payload; it fetches related objects it has not
seen yet (a customer's first subscription brings its plan and product), so a new
customer costs a few API calls once and later events usually none. The canonical
customer never waits for this: the mirror is its own handler run, retried alone.
"""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings
from djstripe import models as djstripe_models

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


def sync_object(obj: dict[str, Any]) -> str:
    model = MODELS.get(obj.get("object", ""))
    if model is None:
        return f"dj-stripe mirror: {obj.get('object')!r} objects are not mirrored"
    data = stripe.convert_to_stripe_object(obj)
    model.sync_from_stripe_data(data, api_key=settings.STRIPE_SECRET_KEY)
    return f"dj-stripe mirror: {obj.get('object')} {obj.get('id')} synced"
