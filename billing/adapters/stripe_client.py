"""The only module that configures the Stripe SDK for Switchboard.

The API base is a setting (``STRIPE_API_BASE``) so development, tests and the demo talk
to localstripe, never to the real Stripe.
"""

from __future__ import annotations

import stripe
from django.conf import settings


def configure() -> None:
    stripe.api_key = settings.STRIPE_SECRET_KEY
    stripe.api_base = settings.STRIPE_API_BASE.rstrip("/")
    stripe.max_network_retries = 0
