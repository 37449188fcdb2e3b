"""Structured logs of a full webhook journey: JSON lines with request and Stripe event ids,
and never a card number, a secret or a body."""

from __future__ import annotations

import io
import json
import logging

import pytest

from audit.logging import JsonFormatter, RequestContextFilter
from devkit import stripe_events as events
from tests.stripe_support.fixtures import drain

pytestmark = pytest.mark.django_db

CARD = "4242424242424242"
BODY_MARKER = "Dear Ada, your payment of $20.00 failed"


@pytest.fixture
def json_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    # The webhook's "stored" line is DEBUG (a new event's record is its row): on here, so
    # every line the journey can write is checked.
    views = logging.getLogger("billing.views")
    level = views.level
    views.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        views.setLevel(level)
        root.removeHandler(handler)


def test_full_journey_logs_carry_ids_and_no_card_secret_or_body(webhook, settings, json_logs):
    cus = events.customer(email="ada@example.test")
    cus["description"] = f"card {CARD} · {BODY_MARKER}"
    sub = events.subscription(cus["id"], status="active")
    invoice = events.invoice(cus["id"], subscription_id=sub["id"], status="open")
    invoice["description"] = BODY_MARKER
    journey = [
        events.event("customer.created", cus),
        events.event("customer.subscription.created", sub),
        events.event("invoice.payment_failed", invoice),
        events.event("invoice.paid", {**invoice, "status": "paid"}),
    ]
    for event in journey:
        assert webhook.post(event).status_code == 200
    assert webhook.post(journey[0]).status_code == 200  # a duplicate delivery
    assert webhook.post(journey[1], secret="whsec_wrong").status_code == 400
    drain()
    # a careless line elsewhere is masked all the same
    logging.getLogger("billing.careless").warning(
        "charging %s with %s", "4242 4242 4242 4242", settings.STRIPE_SECRET_KEY
    )

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    text = json_logs.getvalue()
    pipeline = [
        line
        for line in lines
        if line["logger"].startswith("billing.")
        and "rejected" not in line["message"]
        and line["logger"] != "billing.careless"
    ]
    ids = {e["id"] for e in journey}
    assert len(pipeline) >= 2 * len(journey)
    assert all(line["stripe_event_id"] in ids for line in pipeline), pipeline
    assert all(line["request_id"] not in ("", "-") for line in pipeline)
    assert {line["stripe_event_id"] for line in pipeline} == ids
    for forbidden in (
        CARD,
        "4242 4242 4242 4242",
        BODY_MARKER,
        settings.STRIPE_WEBHOOK_SECRET,
        settings.STRIPE_SECRET_KEY,
        "whsec_wrong",
        '"data": {',
        "ada@example.test",
    ):
        assert forbidden not in text, forbidden
    careless = next(line for line in lines if line["logger"] == "billing.careless")
    assert careless["message"] == "charging ****4242 with ***"
