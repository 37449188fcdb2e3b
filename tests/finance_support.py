"""Helpers for the finance action tests: a real subscriber in localstripe, linked to a
canonical customer through the pipeline, and the confirming events localstripe never
sends (built around the real objects read back from localstripe)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import stripe
from django.db import connection

from billing import refunds
from config import locks
from customers.models import Customer
from devkit import stripe_events as events
from tests.stripe_support import objects
from tests.stripe_support.fixtures import drain
from tests.stripe_support.objects import snap


def plan(plan_id: str, amount: int, name: str) -> Any:
    return objects.plan(plan_id, amount, name=name)


def subscriber(
    webhook: Any, on_plan: Any, email: str = "ada@example.test"
) -> tuple[Customer, Any, str]:
    """A localstripe customer paying ``on_plan`` (charged at once), projected onto our
    canonical record by delivering its creation events. Returns (customer, subscription,
    charge id of the first payment)."""
    customer, sub, _ = objects.subscriber(email, on_plan)
    invoice = stripe.Invoice.retrieve(sub.latest_invoice)
    charge_id = stripe.PaymentIntent.retrieve(invoice.payment_intent).latest_charge.id
    earlier = int(time.time()) - 10  # the confirming events built later are newer
    for event_type, obj in (("customer.created", customer), ("customer.subscription.created", sub)):
        assert webhook.post(events.event(event_type, snap(obj), created=earlier)).status_code == 200
    drain()
    return Customer.objects.get(stripe_customer_id=customer.id), sub, charge_id


def confirm(webhook: Any, event_type: str, obj: Any) -> dict[str, Any]:
    """Deliver the event Stripe would send now for ``obj`` (read back from localstripe)
    and run the pipeline's worker."""
    event = events.event(event_type, snap(obj))
    assert webhook.post(event).status_code == 200
    drain()
    return event


@contextmanager
def approval_running_elsewhere(request_id: int) -> Iterator[None]:
    """Another approver's approval of the refund request in flight: its claim, held on
    another database connection (the claim ends with that connection, as with a crash)."""
    settings_dict = connection.settings_dict
    with psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or 5432,
        password=settings_dict["PASSWORD"] or None,
        autocommit=True,
    ) as other:
        other.execute(
            f"SELECT pg_advisory_lock({locks.LOCK_ID})", [refunds._approval_lock_name(request_id)]
        )
        yield
