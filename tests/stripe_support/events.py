"""Correctly shaped Stripe events built from Stripe's own example objects.

The builders live in ``devkit.stripe_events`` so that ``manage.py demo_stripe_seed``
can use them without pytest; this module keeps the tests' import path.
"""

from __future__ import annotations

from devkit.stripe_events import (  # noqa: F401
    FIXTURES,
    charge,
    customer,
    dispute,
    event,
    example,
    invoice,
    new_id,
    subscription,
)
