"""Helpers for exercising the Stripe pipeline without the real Stripe.

Used by the test suite and by ``manage.py demo_stripe_seed``, so nothing here imports
pytest. ``events`` builds Stripe events from Stripe's own example objects, ``signing``
signs them as Stripe does, ``relay`` captures the webhooks localstripe sends so they
can be handed to the console exactly as received.
"""
