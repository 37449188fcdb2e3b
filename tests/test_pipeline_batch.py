"""The events drain's batch path (billing/services.py ``_events_fast``,
billing/projection.py ``project_known``) gives exactly what one event at a time gives.

Outcomes asserted: for shuffled journeys of many kinds of events, the customers' fields,
their facts and every projection run's note and changes are the same through the batch
path as through the one-by-one path; the batch path is what ran (and how few queries it
costs); a batch whose transaction fails loses nothing.
"""

from __future__ import annotations

import random
import time

import pytest
from django.db import transaction

from billing import services, status_map
from billing.models import CustomerFacts, EventStatus, HandlerRun, RunStatus, StripeEvent
from customers.models import Customer
from devkit import stripe_events as events
from devkit.signing import encode

# Bookkeeping timestamps that say when, not what: they differ between two runs.
_WHEN = {"billing_confirmed_at", "updated_at", "created_at", "id"}


def ingest(built: list[dict]) -> None:
    for event in built:
        services.event_ingest(payload=event, body=encode(event).decode())


def journey(cus_id: str, base: int, rng: random.Random) -> list[dict]:
    """A customer's events over a few months: its profile, a subscription's changes and
    end, invoices paid, failed and needing action."""
    sub_id = events.new_id("sub")
    plan = rng.choice(["plan_basic", "plan_pro"])
    customer = {**events.customer(email=f"{cus_id}@example.test", name=cus_id), "id": cus_id}
    built = [
        events.event("customer.created", customer, created=base),
        events.event(
            "customer.subscription.created",
            events.subscription(cus_id, status="trialing", sub_id=sub_id, plan_id=plan),
            created=base + 1,
        ),
    ]
    t = base + 2
    for _ in range(rng.randint(3, 8)):
        t += rng.randint(1, 5000)
        kind = rng.choice(["sub", "paid", "failed", "profile", "action", "cancel"])
        if kind == "sub":
            status = rng.choice(["active", "past_due", "unpaid", "active"])
            plan = rng.choice(["plan_basic", "plan_pro", plan])
            obj = events.subscription(cus_id, status=status, sub_id=sub_id, plan_id=plan)
            built.append(events.event("customer.subscription.updated", obj, created=t))
        elif kind in ("paid", "failed", "action"):
            status = {"paid": "paid", "failed": "open", "action": "open"}[kind]
            event_type = {
                "paid": "invoice.paid",
                "failed": "invoice.payment_failed",
                "action": "invoice.payment_action_required",
            }[kind]
            invoice = events.invoice(cus_id, subscription_id=sub_id, status=status)
            built.append(events.event(event_type, invoice, created=t))
        elif kind == "profile":
            renamed = {**customer, "name": f"{cus_id} {t}", "email": f"{t}.{cus_id}@example.test"}
            built.append(events.event("customer.updated", renamed, created=t))
        else:
            obj = events.subscription(cus_id, status="canceled", sub_id=sub_id, plan_id=plan)
            built.append(events.event("customer.subscription.deleted", obj, created=t))
    return built


def state() -> dict:
    """What the projection decided: customer fields and facts by Stripe customer, and
    every projection run's outcome by event."""
    customers = {
        c["stripe_customer_id"]: {k: v for k, v in c.items() if k not in _WHEN}
        for c in Customer.objects.values()
    }
    facts = {
        row.customer.stripe_customer_id: row.facts
        for row in CustomerFacts.objects.select_related("customer")
    }
    runs = {
        (run.event.stripe_id, run.handler): (run.status, run.attempts, run.note, run.changes)
        for run in HandlerRun.objects.select_related("event")
    }
    statuses = set(StripeEvent.objects.values_list("status", flat=True))
    return {"customers": customers, "facts": facts, "runs": runs, "events": statuses}


def drain_all() -> None:
    while services.events_drain_batch():
        pass


def known_customers(count: int) -> tuple[list[str], int]:
    """``count`` customers created by their first event; their ids, and that event's time."""
    ids = [events.new_id("cus") for _ in range(count)]
    base = int(time.time()) - 3600
    ingest([events.event("customer.created", events.customer(i), created=base) for i in ids])
    drain_all()
    return ids, base


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_batch_path_decides_what_one_event_at_a_time_decides(seed, monkeypatch):
    rng = random.Random(seed)
    base = int(time.time()) - 90 * 86400
    ids = [events.new_id("cus") for _ in range(8)]
    journeys = [journey(cus_id, base + n, rng) for n, cus_id in enumerate(ids)]
    # Each customer's first event first, one by one (the batch path takes only customers
    # we know); the rest arrive shuffled, the way Stripe delivers.
    ingest([j[0] for j in journeys])
    drain_all()
    rest = [event for j in journeys for event in j[1:]]
    rng.shuffle(rest)
    ingest(rest)

    batched: list[str] = []
    known = services.project_known

    def spy(groups):
        done = known(groups)
        batched.extend(snap.event_id for key in done for snap in groups[key])
        return done

    monkeypatch.setattr(services, "project_known", spy)
    savepoint = transaction.savepoint()
    drain_all()
    through_batch = state()
    transaction.savepoint_rollback(savepoint)

    monkeypatch.setattr(services, "_fast_eligible", lambda key, group: False)
    drain_all()
    one_by_one = state()

    assert through_batch["events"] == one_by_one["events"] == {EventStatus.PROCESSED}
    assert through_batch == one_by_one
    # The batch path did the work: every event (of a known customer, all snapshots).
    assert len(batched) == len(rest)


@pytest.mark.django_db
def test_a_batch_of_known_customers_costs_a_few_queries(django_assert_max_num_queries):
    ids, base = known_customers(40)
    burst = [
        events.event(
            "customer.subscription.updated",
            events.subscription(ids[n % 40], status="active", sub_id=f"sub_b{n % 40}"),
            created=base + 10 + n,
        )
        for n in range(100)
    ]
    ingest(burst)
    # One batch of 100 events of 40 customers: claim, read, runs and finance-action
    # checks, customers, facts, write-back, runs, events, follow-up signal. One event at
    # a time this was about 12 queries per event (1,200).
    with django_assert_max_num_queries(20):
        assert services.events_drain_batch(limit=100) == 100
    runs = HandlerRun.objects.filter(
        handler=status_map.PROJECTION,
        event__in=StripeEvent.objects.filter(stripe_id__in=[e["id"] for e in burst]),
    )
    assert runs.count() == 100
    assert set(runs.values_list("status", "attempts")) == {(RunStatus.SUCCEEDED, 1)}
    assert Customer.objects.filter(status="active").count() == 40


@pytest.mark.django_db
def test_a_failed_batch_transaction_leaves_every_event_to_the_one_by_one_path(monkeypatch):
    ids, base = known_customers(5)
    ingest(
        [
            events.event(
                "customer.subscription.created",
                events.subscription(i, status="active"),
                created=base + 5,
            )
            for i in ids
        ]
    )

    def broken(groups):
        raise RuntimeError("the database went away mid-batch")

    monkeypatch.setattr(services, "project_known", broken)
    assert services.events_drain_batch() == 5
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {EventStatus.PROCESSED}
    assert Customer.objects.filter(status="active").count() == 5
    assert set(
        HandlerRun.objects.filter(handler=status_map.PROJECTION).values_list("status", flat=True)
    ) == {RunStatus.SUCCEEDED}
