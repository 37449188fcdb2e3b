"""pytest fixtures for tests against localstripe (imported by tests/conftest.py).

- ``localstripe`` (session): one shimmed localstripe process on a free port
  (devkit/localstripe.py), stopped at the end of the session.
- ``stripe_api`` (per test): points ``settings.STRIPE_API_BASE`` and ``stripe.api_base``
  at it, turns the dj-stripe mirror on, starts from an empty localstripe and creates
  dj-stripe's Account/APIKey rows (localstripe has no GET /v1/account). Before that it
  waits (bounded) until the webhooks the previous test caused have been sent, so none
  reaches this test. Everything is restored after the test. This is per test, not per
  session, on purpose: a session-wide override would outlive the test that asked for it
  and send every later test's Stripe calls (and mirror runs) to localstripe instead of
  the discard port.
- ``localstripe_webhooks`` (per test): a relay (devkit/relay.py) registered with
  localstripe; ``wait_for`` polls, with a bound, until the expected events arrived, and
  ``deliver()`` posts each captured delivery, exact bytes and Stripe-Signature header,
  to our webhook view.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
import stripe

from devkit.localstripe import LocalStripe, djstripe_account_ensure
from devkit.relay import Delivery, WebhookRelay

WEBHOOK_ID = "switchboard-tests"
DISCARD_URL = "http://127.0.0.1:9/"


@pytest.fixture(scope="session")
def localstripe():
    server = LocalStripe().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stripe_api(localstripe, settings, db):
    """The Stripe API (SDK and dj-stripe) pointed at an empty localstripe for one test."""
    previous_base = stripe.api_base
    settings.STRIPE_API_BASE = localstripe.url
    settings.STRIPE_MIRROR_ENABLED = True
    stripe.api_base = localstripe.url
    # Late webhooks of the previous test must not reach this test's receiver.
    localstripe.quiesce(settings.STRIPE_SECRET_KEY)
    localstripe.flush()
    djstripe_account_ensure(settings.STRIPE_SECRET_KEY)
    try:
        yield localstripe
    finally:
        stripe.api_base = previous_base


class LocalStripeWebhooks:
    """What localstripe sent during one test, and a way to hand it to our webhook view."""

    def __init__(self, relay: WebhookRelay, webhook: Any) -> None:
        self.relay = relay
        self.webhook = webhook

    def wait_for(
        self, expected: Mapping[str, int] | Iterable[str], *, timeout: float = 15.0
    ) -> list[Delivery]:
        """Deliveries not handed over yet, once those expected have arrived (bounded)."""
        self.relay.wait_for(
            expected, timeout=timeout, since=len(self.relay.deliveries) - len(self.relay.pending())
        )
        return self.relay.pending()

    def deliver(self, *, shuffle: random.Random | None = None) -> list[Delivery]:
        """Post every pending delivery to the webhook view as received (or shuffled);
        each must be answered 200. Returns what was delivered."""
        batch = self.relay.pending()
        if shuffle is not None:
            batch = shuffle.sample(batch, len(batch))
        for delivery in batch:
            response = self.webhook.post(delivery.body, header=delivery.signature)
            assert response.status_code == 200, (delivery.type, response.content)
            delivery.forwarded = True
        return batch

    def receive(
        self, expected: Mapping[str, int] | Iterable[str], *, timeout: float = 15.0
    ) -> list[Delivery]:
        """``wait_for`` then ``deliver``: the usual step of a journey."""
        self.wait_for(expected, timeout=timeout)
        return self.deliver()


@pytest.fixture
def localstripe_webhooks(stripe_api, webhook):
    with WebhookRelay() as relay:
        stripe_api.register_webhook(WEBHOOK_ID, relay.url, webhook.secret)
        try:
            yield LocalStripeWebhooks(relay, webhook)
        finally:
            # localstripe cannot forget a webhook: point it at the discard port.
            stripe_api.register_webhook(WEBHOOK_ID, DISCARD_URL, webhook.secret)
