"""``make proof``: how long requests wait on a Redis that accepts and never answers.

Prints the figures (run with -s); asserts outcomes only (readiness says not ready, the API
answers, the webhook is stored), so a slow machine never turns the timing into a flake.
The README's target: /readyz within 2 s whatever Redis does.
"""

from __future__ import annotations

import time

import pytest

from console.api_tokens import api_token_create
from devkit import stripe_events as events
from tests.factories import CustomerFactory
from tests.fault_support import hanging_server
from tests.test_health import redis_at

pytestmark = [pytest.mark.proof, pytest.mark.django_db(transaction=True)]


def test_requests_wait_a_bounded_time_on_a_hanging_redis(client, settings, owner, webhook):
    token = api_token_create(actor=owner, name="widget")[1]
    CustomerFactory(stripe_customer_id="cus_hang")
    figures = {}
    with hanging_server() as port, redis_at(settings, f"redis://127.0.0.1:{port}/0"):
        started = time.monotonic()
        ready = client.get("/readyz")
        figures["/readyz"] = (ready.status_code, time.monotonic() - started)
        started = time.monotonic()
        state = client.get("/api/v1/customers/cus_hang/state", HTTP_AUTHORIZATION=f"Bearer {token}")
        figures["account-state API"] = (state.status_code, time.monotonic() - started)
        started = time.monotonic()
        stored = webhook.post(events.event("customer.created", events.customer()))
        figures["webhook (stored, enqueue fails)"] = (
            stored.status_code,
            time.monotonic() - started,
        )
    for name, (status, seconds) in figures.items():
        print(f"\nhanging Redis: {name}: {status} in {seconds:.2f} s")
    assert figures["/readyz"][0] == 503
    assert figures["account-state API"][0] == 200
    assert figures["webhook (stored, enqueue fails)"][0] == 200
