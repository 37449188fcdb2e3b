"""Real Stripe's events: the newest API version's shapes, the oldest we accept
(2024-06-20), every delivery order, and thin events.

The journeys (tests/stripe_support/journeys.py) are built from Stripe's published example
objects, rendered in the API version under test, signed as Stripe signs and posted through
the webhook URL; real workers run in burst mode. A run that fails because what it needs
has not arrived yet (a dispute before any event of its charge) is retried, as the
sweeper would, until nothing is left to retry: the end state is compared then.
"""

from __future__ import annotations

import io
import time
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from billing import services
from billing.models import EventStatus, HandlerRun, RunStatus, StripeEvent
from billing.selectors import events_in_other_api_versions
from customers.models import Customer
from devkit import stripe_events as events
from support.models import Ticket, TicketStatus
from tests.stripe_support.fixtures import drain
from tests.stripe_support.journeys import JOURNEYS, Journey, in_order, orders

pytestmark = pytest.mark.django_db

VERSIONS = ("newest", events.LEGACY)


def _version(name: str) -> str:
    return settings.STRIPE_API_VERSION if name == "newest" else name


def settle(*, rounds: int = 6) -> None:
    """Drain the queues, then give failed runs their retry at once (the sweeper's job,
    without its backoff) until none is left failing."""
    drain()
    for _ in range(rounds):
        failed = HandlerRun.objects.filter(status=RunStatus.FAILED)
        if not failed.exists():
            return
        failed.update(next_attempt_at=timezone.now())
        services.sweep()
        drain()
    stuck = list(
        HandlerRun.objects.exclude(status=RunStatus.SUCCEEDED).values_list(
            "event__type", "handler", "last_error"
        )
    )
    raise AssertionError(f"runs still not succeeded: {stuck}")


def _state(customer: Customer, keys: Any) -> dict[str, Any]:
    return {key: getattr(customer, key) for key in keys}


def _deliver(webhook, envelopes: list[dict[str, Any]]) -> None:
    for envelope in envelopes:
        assert webhook.post(envelope).status_code == 200


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", JOURNEYS)
def test_each_step_in_stripes_order_is_what_the_status_map_says(webhook, name, version):
    journey: Journey = JOURNEYS[name](_version(version))
    base = int(time.time()) - 3600
    envelopes = journey.envelopes(version=_version(version), base=base)
    assert {e["api_version"] for e in envelopes} == {_version(version)}
    for envelope, expected in zip(envelopes, journey.after_each, strict=True):
        assert webhook.post(envelope).status_code == 200
        settle()
        customer = Customer.objects.get(stripe_customer_id=journey.customer_id)
        assert customer.status == expected, envelope["type"]
    customer = Customer.objects.get(stripe_customer_id=journey.customer_id)
    assert _state(customer, journey.expected) == journey.expected


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", JOURNEYS)
def test_every_delivery_order_ends_in_the_same_state(webhook, name, version):
    """Through the webhook: Stripe's order, the reverse and (newest) a seeded shuffle, each
    a fresh customer. tests/test_order_proof.py sweeps hundreds of orders in-process."""
    count = 3 if version == "newest" else 2
    seen = []
    for order in orders(len(JOURNEYS[name](_version(version)).steps), count, seed=11):
        journey = JOURNEYS[name](_version(version))
        envelopes = journey.envelopes(version=_version(version), base=int(time.time()) - 3600)
        _deliver(webhook, in_order(envelopes, order))
        settle()
        customer = Customer.objects.get(stripe_customer_id=journey.customer_id)
        assert _state(customer, journey.expected) == journey.expected, order
        seen.append(_tickets(journey))
    # The tickets are order-proof too: the same tickets, in the same states, every time.
    assert all(tickets == seen[0] for tickets in seen), seen


def _tickets(journey: Journey) -> list[tuple[str, str]]:
    rows = Ticket.objects.filter(customer__stripe_customer_id=journey.customer_id)
    return sorted(
        (t.situation_key.split(":", 1)[0] + ":" + _name(journey, t.situation_key), t.status)
        for t in rows
    )


def _name(journey: Journey, key: str) -> str:
    """A situation key with this journey's ids replaced by their role."""
    object_id = key.split(":", 1)[1]
    return next((role for role, i in journey.ids.items() if i == object_id), object_id[:3])


def test_payment_failure_processed_after_its_payment_is_one_solved_ticket_and_no_email(
    webhook, mailoutbox
):
    journey = JOURNEYS["subscription"](events.LEGACY)
    envelopes = journey.envelopes(version=events.LEGACY, base=int(time.time()) - 3600)
    # Stripe's order up to the renewal being paid, but the payment before the failures.
    paid, failures = envelopes[8], [envelopes[5], envelopes[7]]
    assert paid["type"] == "invoice.paid" and {f["type"] for f in failures} == {
        "invoice.payment_failed"
    }
    _deliver(webhook, [*envelopes[:5], paid, *failures])
    settle()
    ticket = Ticket.objects.get(situation_key=f"payment_failed:{journey.ids['renewal']}")
    assert ticket.status == TicketStatus.SOLVED
    assert (
        "was paid"
        in HandlerRun.objects.filter(event__stripe_id=failures[0]["id"], handler="helpdesk_ticket")
        .get()
        .note
    )
    # No "your payment failed" for an invoice already paid (and so no "it went through").
    assert not [m for m in mailoutbox if journey.ids["renewal"] in m.body]
    assert Customer.objects.get(stripe_customer_id=journey.customer_id).status == "active"


# --- nothing dropped as "succeeded" ------------------------------------------------------


def test_failure_email_goes_to_the_invoices_address_when_the_customer_has_none(webhook, mailoutbox):
    cus_id, sub_id = events.new_id("cus"), events.new_id("sub")
    invoice = events.invoice(
        cus_id, subscription_id=sub_id, status="open", customer_email="billing@example.test"
    )
    # The customer record is first created by this event, without an email of its own.
    webhook.post(events.event("invoice.payment_failed", invoice))
    settle()
    from delivery.models import OutboxMessage

    row = OutboxMessage.objects.get(dedupe_key=f"email:payment_failed:{invoice['id']}")
    assert row.payload["to"] == ["billing@example.test"]


def test_failure_email_without_any_address_is_retried_until_one_arrives(webhook, settings):
    settings.HANDLER_MAX_ATTEMPTS = 3
    cus = events.customer(email="late@example.test")
    invoice = events.invoice(cus["id"], subscription_id=events.new_id("sub"), status="open")
    t = int(time.time()) - 600
    failed = events.event("invoice.payment_failed", invoice, created=t)
    webhook.post(failed)
    drain()
    run = HandlerRun.objects.get(event__stripe_id=failed["id"], handler="customer_notification")
    assert run.status == RunStatus.FAILED and "no email address" in run.last_error

    # customer.created (with the address) arrives; the retry sends.
    webhook.post(events.event("customer.created", cus, created=t - 5))
    settle()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and "queued" in run.note
    from delivery.models import OutboxMessage

    assert OutboxMessage.objects.filter(dedupe_key=f"email:payment_failed:{invoice['id']}").exists()


def test_failure_email_without_any_address_ends_dead_and_alerted(webhook, settings):
    from console.models import Alert

    settings.HANDLER_MAX_ATTEMPTS = 2
    invoice = events.invoice(events.new_id("cus"), subscription_id=None, status="open")
    failed = events.event("invoice.payment_failed", invoice)
    webhook.post(failed)
    drain()
    run = HandlerRun.objects.get(event__stripe_id=failed["id"], handler="customer_notification")
    HandlerRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    services.sweep()
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.DEAD
    assert Alert.objects.filter(key=f"handler_dead:{run.pk}").exists()


# --- API versions ---------------------------------------------------------------------


def test_an_event_in_another_api_version_is_processed_and_counted(webhook):
    before = timezone.now() - timedelta(minutes=1)
    cus = events.customer(email="old@example.test")
    sub = events.subscription(cus["id"], status="active")
    webhook.post(events.event("customer.subscription.created", sub, api_version=events.LEGACY))
    webhook.post(events.event("customer.created", cus))
    settle()
    customer = Customer.objects.get(stripe_customer_id=cus["id"])
    assert customer.status == "active" and customer.current_period_end is not None
    counted = events_in_other_api_versions(before, timezone.now() + timedelta(minutes=1))
    assert counted == {events.LEGACY: 1}


def test_every_api_call_and_the_registered_endpoint_speak_the_pinned_version(settings, monkeypatch):
    from billing.adapters import stripe_client

    settings.STRIPE_API_VERSION = "2026-08-26.dahlia"
    stripe_client.configure()
    assert stripe.api_version == "2026-08-26.dahlia"

    created: dict[str, Any] = {}

    def create(**params: Any) -> Any:
        created.update(params)
        return stripe.convert_to_stripe_object({"id": "we_1", "secret": "whsec_from_stripe"})

    monkeypatch.setattr(stripe.WebhookEndpoint, "create", create)
    out = io.StringIO()
    call_command(
        "stripe_webhook_setup",
        "--base-url",
        "https://console.example.com",
        "--register",
        stdout=out,
    )
    assert created["api_version"] == "2026-08-26.dahlia"
    assert "invoice_payment.paid" in created["enabled_events"]


# --- thin events ------------------------------------------------------------------------


def test_thin_customer_updated_is_fetched_and_processed(stripe_api, webhook):
    customer = stripe.Customer.create(email="thin@example.test", name="Thin")
    t = int(time.time()) - 60
    webhook.post(events.event("customer.created", customer.to_dict(), created=t - 30))
    stripe.Customer.modify(customer.id, name="Thin Renamed", email="renamed@example.test")
    thin = events.thin_event("v1.customer.updated", "customer", customer.id, created=t)
    response = webhook.post(thin)
    assert response.status_code == 200 and response.json()["received"] is True
    row = StripeEvent.objects.get(stripe_id=thin["id"])
    assert (row.object_type, row.object_id, row.api_version) == ("customer", customer.id, "")
    settle()
    row.refresh_from_db()
    assert row.status == EventStatus.PROCESSED and row.data_object["name"] == "Thin Renamed"
    assert set(row.handler_runs.values_list("handler", "status")) >= {
        ("customer_projection", RunStatus.SUCCEEDED),
        ("crm_update", RunStatus.SUCCEEDED),
    }
    ours = Customer.objects.get(stripe_customer_id=customer.id)
    assert (ours.name, ours.email) == ("Thin Renamed", "renamed@example.test")

    # Delivered again, or a snapshot event older than it arriving late: nothing regresses.
    webhook.post(thin)
    webhook.post(
        events.event("customer.updated", {**customer.to_dict(), "name": "Old"}, created=t - 10)
    )
    settle()
    ours.refresh_from_db()
    assert ours.name == "Thin Renamed"


def test_thin_event_waits_for_stripe_and_is_fetched_on_retry(webhook):
    thin = events.thin_event("v1.customer.updated", "customer", events.new_id("cus"))
    webhook.post(thin)
    drain()  # Stripe (the discard port here) cannot be reached
    row = StripeEvent.objects.get(stripe_id=thin["id"])
    assert row.status == EventStatus.FAILED and "fetching" in row.last_error
    assert not row.handler_runs.exists()


# --- against localstripe: what the newest shapes no longer carry is fetched --------------

CARD_DECLINES_CHARGES = "4000000000000341"


def test_newest_failed_payment_intent_finds_its_invoice_one_ticket(stripe_api, webhook):
    """Since basil a payment intent no longer names its invoice: it is asked of Stripe
    (InvoicePayments), so the intent's failure and the invoice's are one ticket, which
    links the payment."""
    from tests.stripe_support.objects import plan, subscriber

    pro = plan()
    customer, subscription, _ = subscriber(
        "grace@example.test", pro, card_number=CARD_DECLINES_CHARGES
    )
    invoice = stripe.Invoice.retrieve(subscription.latest_invoice)
    t = int(time.time()) - 60
    intent = events.payment_intent(
        customer.id, status="requires_payment_method", pi_id=invoice.payment_intent
    )
    failed = events.invoice(
        customer.id,
        subscription_id=subscription.id,
        invoice_id=invoice.id,
        status="open",
        billing_reason="subscription_create",
        customer_email="grace@example.test",
    )
    for envelope in (
        events.event("payment_intent.payment_failed", intent, created=t),
        events.event("invoice.payment_failed", failed, created=t + 1),
    ):
        assert "invoice" not in envelope["data"]["object"]
        assert "charge" not in envelope["data"]["object"]
        webhook.post(envelope)
    settle()
    ticket = Ticket.objects.get()
    assert ticket.situation_key == f"payment_failed:{invoice.id}"
    assert f"/payments/{invoice.payment_intent}" in ticket.body


def test_djstripe_mirror_and_its_admin_pages_on_the_newest_shapes(
    stripe_api, webhook, client, finance_admin
):
    from djstripe import models as dj

    from tests.stripe_support.objects import plan, subscriber

    pro = plan()
    customer, subscription, _ = subscriber("ada@example.test", pro)
    renewal = stripe.Invoice.create(customer=customer.id, subscription=subscription.id)
    t = int(time.time()) - 60
    sub = events.subscription(
        customer.id,
        sub_id=subscription.id,
        plan_id=pro.id,
        product=pro.product,
        item_id=subscription["items"].data[0].id,
        latest_invoice=renewal.id,
    )
    paid = events.invoice(
        customer.id, subscription_id=subscription.id, invoice_id=renewal.id, amount=pro.amount
    )
    assert "current_period_end" not in sub and "paid" not in paid
    webhook.post(events.event("customer.subscription.updated", sub, created=t))
    webhook.post(events.event("invoice.paid", paid, created=t + 1))
    settle()

    mirrored = dj.Subscription.objects.get(id=subscription.id)
    assert mirrored.current_period_end is not None
    invoice = dj.Invoice.objects.get(id=renewal.id)
    assert invoice.paid is True and invoice.subscription_id == subscription.id
    ours = Customer.objects.get(stripe_customer_id=customer.id)
    assert ours.current_period_end == mirrored.current_period_end

    client.force_login(finance_admin)
    # An invoice dj-stripe stored as fetched from Stripe itself: no "paid" key at all.
    stored = dict(invoice.stripe_data)
    stored.pop("paid")
    dj.Invoice.objects.filter(pk=invoice.pk).update(stripe_data=stored)
    for url in (
        "/admin/djstripe/invoice/",
        f"/admin/djstripe/invoice/{invoice.pk}/change/",
        "/admin/djstripe/subscription/",
        f"/admin/djstripe/subscription/{mirrored.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    listing = client.get("/admin/djstripe/invoice/").content.decode()
    assert 'alt="True"' in listing  # the "paid" column, read from the invoice's status


def test_finance_panel_and_cancel_page_show_the_period_end_of_a_newest_shape_subscription(
    client, finance_admin, monkeypatch
):
    """Stripe answering in the pinned (newest) version: the period is on the items."""
    from billing.adapters import stripe_client
    from tests.factories import CustomerFactory

    sub = events.subscription("cus_Newest1", period_end=1_900_000_000, nickname="Pro")
    assert "current_period_end" not in sub
    customer = CustomerFactory(stripe_customer_id="cus_Newest1", subscription_id=sub["id"])
    monkeypatch.setattr(stripe_client, "finance_read", lambda kind, object_id: dict(sub))
    monkeypatch.setattr(stripe_client, "finance_list", lambda kind, **params: [])
    client.force_login(finance_admin)
    period_end = "March 17, 2030"  # 1_900_000_000 in the console's date format
    panel = client.get(f"/finance/customers/{customer.pk}/panel/").content.decode()
    assert f"period ends {period_end}" in panel
    cancel = client.get(f"/finance/customers/{customer.pk}/cancel/").content.decode()
    assert period_end in cancel
