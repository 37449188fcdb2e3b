"""Order never decides the outcome: every journey's events, in hundreds of delivery orders.

Stripe promises no order. For each journey (tests/stripe_support/journeys.py), in the
newest API version's shapes and in 2024-06-20's:

- the status map (``status_map.apply`` then ``status_map.derive``, exactly what the
  projection does with an event) over 250 distinct seeded orders: the customer's fields
  are the same as in Stripe's order, and as README's status map says;
- the projection itself (``billing.projection.project``, in-process, against PostgreSQL)
  over a sample of orders: the same customer as in Stripe's order.

``make proof`` (``SWITCHBOARD_PROOF=1``) runs the long sweep: every order of the journeys
short enough to enumerate, 20,000 seeded orders of the others, and 200 orders of each
through the projection.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from billing import shapes, status_map
from billing.models import StripeEvent
from billing.projection import project
from customers.models import Customer
from devkit import stripe_events as events
from tests.stripe_support.journeys import JOURNEYS, Journey, orders

PROOF = bool(os.environ.get("SWITCHBOARD_PROOF"))
VERSIONS = ("newest", events.LEGACY)
FOLD_ORDERS = 20_000 if PROOF else 250
PROJECT_ORDERS = 200 if PROOF else 20
EXHAUSTIVE_UP_TO = 9 if PROOF else 0  # events: 9! = 362,880 orders


def _version(name: str) -> str:
    from django.conf import settings

    return settings.STRIPE_API_VERSION if name == "newest" else name


def _key(envelope: dict[str, Any]) -> status_map.Key:
    created = datetime.fromtimestamp(envelope["created"], tz=UTC)
    return status_map.event_key(created, envelope["type"], envelope["id"])


def _context(envelope: dict[str, Any], journey: list[dict[str, Any]]) -> dict[str, Any]:
    """What the projection looks up for an InvoicePayment: its invoice, as an event of the
    journey showed it (or Stripe would)."""
    obj = envelope["data"]["object"]
    if obj.get("object") != "invoice_payment":
        return {}
    invoice_id = shapes.invoice_payment_invoice_id(obj)
    return {
        "invoice": next(
            e["data"]["object"] for e in journey if e["data"]["object"].get("id") == invoice_id
        )
    }


def fold(envelopes: list[dict[str, Any]], order: Any) -> dict[str, Any]:
    facts: status_map.Facts = {}
    for i in order:
        envelope = envelopes[i]
        status_map.apply(
            facts,
            envelope["type"],
            envelope["data"]["object"],
            _key(envelope),
            _context(envelope, envelopes),
        )
    return status_map.derive(facts)


def _all_or_sampled(n: int) -> Any:
    if n <= EXHAUSTIVE_UP_TO:
        return itertools.permutations(range(n))
    return orders(n, FOLD_ORDERS, seed=20261202)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", JOURNEYS)
def test_the_status_map_gives_one_state_in_every_order(name, version, settings):
    journey: Journey = JOURNEYS[name](_version(version))
    envelopes = journey.envelopes(version=_version(version), base=1_800_000_000)
    stripes_order = fold(envelopes, range(len(envelopes)))
    assert {k: stripes_order[k] for k in journey.expected} == journey.expected
    tried = 0
    for order in _all_or_sampled(len(envelopes)):
        assert fold(envelopes, order) == stripes_order, [envelopes[i]["type"] for i in order]
        tried += 1
    assert tried >= min(200, math.factorial(len(envelopes)))


@pytest.mark.django_db
@pytest.mark.parametrize("name", JOURNEYS)
def test_the_projection_gives_one_customer_in_every_order(name):
    """The projection in-process (no HTTP, no queue): each order on a fresh copy of the
    journey's customer, rolled back after it; the events are in the inbox, as they would
    be, so a dispute finds its customer through its payment intent."""
    journey: Journey = JOURNEYS[name](_version("newest"))
    envelopes = journey.envelopes(base=int(time.time()) - 3600)
    StripeEvent.objects.bulk_create(
        StripeEvent(
            stripe_id=e["id"],
            type=e["type"],
            created=datetime.fromtimestamp(e["created"], tz=UTC),
            object_type=e["data"]["object"].get("object", ""),
            object_id=e["data"]["object"].get("id", ""),
            stripe_customer_id=shapes.customer_id(e["data"]["object"]),
            payload=e,
            status="processed",
        )
        for e in envelopes
    )
    fields = [*journey.expected, "latest_invoice_id", "last_payment_at", "current_period_end"]
    outcomes = []
    for order in orders(len(envelopes), PROJECT_ORDERS, seed=7):
        sid = transaction.savepoint()
        for i in order:
            e = envelopes[i]
            project(
                event_id=e["id"],
                event_type=e["type"],
                created=datetime.fromtimestamp(e["created"], tz=UTC),
                obj=e["data"]["object"],
            )
        customer = Customer.objects.get(stripe_customer_id=journey.customer_id)
        outcomes.append({f: getattr(customer, f) for f in dict.fromkeys(fields)})
        transaction.savepoint_rollback(sid)
    assert {k: outcomes[0][k] for k in journey.expected} == journey.expected
    assert all(outcome == outcomes[0] for outcome in outcomes), outcomes
