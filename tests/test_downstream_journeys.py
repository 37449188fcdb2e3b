"""Downstream journeys through the real pipeline: signed Stripe events in, RQ workers in
burst mode, HubSpot and Zendesk as local fakes. One contact, one ticket, one email per
real situation, whatever Stripe retries or replays."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.urls import reverse

from billing import services as billing_services
from billing.models import HandlerRun, RunStatus, StripeEvent
from customers.models import Customer
from delivery.models import OutboxMessage, OutboxState
from devkit import stripe_events as events
from devkit.fakes.hubspot import CONTACTS
from support.models import Ticket, TicketPriority, TicketStatus
from support.permissions import can_work_ticket, visible_queues
from tests.fakes.fixtures import run_all

pytestmark = pytest.mark.django_db

EMAIL = "lin@example.test"


class World:
    """One Stripe customer with a subscription, and a clock for event times."""

    def __init__(self, webhook):
        self.webhook = webhook
        self.cus = events.customer(email=EMAIL, name="Lin Park")
        self.sub_id = events.new_id("sub")
        self.clock = int(time.time()) - 3600
        self.sent: list[dict] = []

    def send(self, event_type: str, obj: dict) -> dict:
        self.clock += 10
        event = events.event(event_type, obj, created=self.clock)
        assert self.webhook.post(event).status_code == 200
        self.sent.append(event)
        return event

    def sub(self, status: str) -> dict:
        return events.subscription(
            self.cus["id"],
            status=status,
            sub_id=self.sub_id,
            plan_id="plan_pro",
            amount=2000,
            nickname="Pro",
        )

    def subscribe(self) -> None:
        self.send("customer.created", self.cus)
        self.send("customer.subscription.created", self.sub("active"))
        self.send(
            "invoice.paid",
            events.invoice(
                self.cus["id"], subscription_id=self.sub_id, billing_reason="subscription_create"
            ),
        )

    def failing_invoice(self) -> dict:
        invoice = events.invoice(self.cus["id"], subscription_id=self.sub_id, status="open")
        invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/{invoice['id']}"
        return invoice

    def customer(self) -> Customer:
        return Customer.objects.get(stripe_customer_id=self.cus["id"])


@pytest.fixture
def world(webhook):
    return World(webhook)


def customer_emails() -> list:
    return [m for m in mail.outbox if m.to == [EMAIL]]


def the_contact(hubspot):
    assert len(hubspot.contacts) == 1, hubspot.contacts
    return next(iter(hubspot.contacts.values()))


def test_paid_customer_is_one_crm_contact_with_stage_customer(world, hubspot, zendesk):
    world.subscribe()
    run_all()
    customer = world.customer()
    contact = the_contact(hubspot)
    assert contact["properties"]["lifecyclestage"] == "customer"
    assert contact["properties"]["switchboard_tags"] == "paying"
    assert contact["properties"]["email"] == EMAIL
    assert contact["properties"]["switchboard_customer_id"] == str(customer.pk)
    assert customer.crm_contact_id == contact["id"]
    assert len(hubspot.calls("POST", CONTACTS, status=201)) == 1
    # Nothing for support or the customer's inbox in a journey without trouble.
    assert not Ticket.objects.exists() and not zendesk.tickets and not customer_emails()
    assert not OutboxMessage.objects.exclude(
        state__in=[OutboxState.DELIVERED, OutboxState.SUPERSEDED]
    ).exists()


def test_payment_failed_twice_then_recovered(world, hubspot, zendesk):
    world.subscribe()
    run_all()
    invoice = world.failing_invoice()
    world.send("invoice.payment_failed", invoice)
    world.send("customer.subscription.updated", world.sub("past_due"))
    run_all()
    # Stripe retries the same invoice: a new event, the same situation; its payment
    # intent failing is the same situation too.
    world.send("invoice.payment_failed", {**invoice, "attempt_count": 3})
    world.send(
        "payment_intent.payment_failed",
        {
            **events.example("payment_intent"),
            "id": events.new_id("pi"),
            "customer": world.cus["id"],
            "status": "requires_payment_method",
            "invoice": invoice["id"],  # 2024-06-20 shape; basil's: tests/test_stripe_versions.py
        },
    )
    run_all()

    ticket = Ticket.objects.get()
    assert (ticket.queue.slug, ticket.situation_key, ticket.priority) == (
        "billing",
        f"payment_failed:{invoice['id']}",
        TicketPriority.HIGH,
    )
    customer = world.customer()
    for fact in (
        str(customer.pk),
        "Pro",
        "Failed",
        "20.00 USD",
        f"https://dashboard.stripe.com/test/invoices/{invoice['id']}",
        f"https://dashboard.stripe.com/test/customers/{world.cus['id']}",
        "invoice.payment_failed",
    ):
        assert fact in ticket.body, fact
    assert "4242" not in ticket.body and "sk_" not in ticket.body
    assert len(zendesk.tickets) == 1
    remote = next(iter(zendesk.tickets.values()))
    assert (remote["external_id"], remote["priority"], str(remote["id"])) == (
        ticket.situation_key,
        "high",
        ticket.external_id,
    )
    requester = zendesk.users[remote["requester_id"]]
    assert requester["external_id"] == str(customer.pk)
    assert customer.helpdesk_user_id == str(requester["id"])

    emails = customer_emails()
    assert len(emails) == 1
    assert "update your card" in emails[0].body
    assert invoice["hosted_invoice_url"] in emails[0].body
    assert the_contact(hubspot)["properties"]["switchboard_tags"] == "payment_failed"

    world.send("invoice.paid", {**invoice, "status": "paid", "paid": True})
    world.send("customer.subscription.updated", world.sub("active"))
    run_all()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.SOLVED
    remote = zendesk.tickets[int(ticket.external_id)]
    assert remote["status"] == "solved"
    assert "was paid" in remote["comments"][-1]["body"]
    emails = customer_emails()
    assert len(emails) == 2 and "went through" in emails[1].body
    assert the_contact(hubspot)["properties"]["switchboard_tags"] == "paying"
    assert len(zendesk.tickets) == 1 and Ticket.objects.count() == 1


def test_dispute_is_one_urgent_ticket_in_disputes_not_visible_to_a_plain_agent(
    world, hubspot, zendesk, client, support_agent, finance_admin
):
    world.subscribe()
    charge = events.charge(world.cus["id"])
    world.send("charge.succeeded", charge)
    dispute = events.dispute(charge)
    world.send("charge.dispute.created", dispute)
    run_all()
    ticket = Ticket.objects.get()
    assert (ticket.queue.slug, ticket.priority) == ("disputes", TicketPriority.URGENT)
    assert [t["priority"] for t in zendesk.tickets.values()] == ["urgent"]
    assert the_contact(hubspot)["properties"]["switchboard_tags"] == "disputed"
    assert [
        n["properties"]["hs_note_body"][: len(f"Dispute {dispute['id']}")]
        for n in hubspot.notes.values()
    ] == [f"Dispute {dispute['id']}"]

    assert not can_work_ticket(support_agent, ticket)
    assert "disputes" not in set(visible_queues(support_agent).values_list("slug", flat=True))
    client.force_login(support_agent)
    listing = client.get(reverse("admin:support_ticket_changelist"))
    assert listing.status_code == 200 and ticket.subject not in listing.content.decode()
    page = client.get(reverse("admin:support_ticket_change", args=[ticket.pk]))
    assert page.status_code == 302  # "doesn't exist" for them, not the ticket

    assert can_work_ticket(finance_admin, ticket)
    client.force_login(finance_admin)
    listing = client.get(reverse("admin:support_ticket_changelist"))
    assert ticket.subject in listing.content.decode()


def test_replayed_events_make_no_second_contact_ticket_or_email(
    world, hubspot, zendesk, django_capture_on_commit_callbacks
):
    world.subscribe()
    world.send("invoice.payment_failed", world.failing_invoice())
    run_all()
    before = (
        len(hubspot.contacts),
        len(zendesk.tickets),
        len(customer_emails()),
        OutboxMessage.objects.count(),
        Ticket.objects.count(),
    )
    assert before[:3] == (1, 1, 1)

    # Stripe delivers every event again ...
    for event in world.sent:
        assert world.webhook.post(event).status_code == 200
    # ... and staff replay them all, as if every handler run had died before recording
    # its success (the handlers run again in full).
    HandlerRun.objects.update(status=RunStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        billing_services.events_replay(
            actor=None,
            event_pks=list(StripeEvent.objects.values_list("pk", flat=True)),
            reason="test",
        )
    run_all()
    assert (
        not HandlerRun.objects.exclude(status=RunStatus.SUCCEEDED)
        .exclude(handler="stripe_mirror")
        .exists()
    )
    after = (
        len(hubspot.contacts),
        len(zendesk.tickets),
        len(customer_emails()),
        OutboxMessage.objects.count(),
        Ticket.objects.count(),
    )
    assert after == before


def test_cancellation_is_one_retention_note_for_support(world, hubspot, zendesk, support_agent):
    world.subscribe()
    world.send("customer.subscription.deleted", world.sub("canceled"))
    world.send("customer.deleted", {**world.cus, "deleted": True})
    run_all()
    ticket = Ticket.objects.get()
    assert (ticket.queue.slug, ticket.situation_key) == ("retention", f"canceled:{world.sub_id}")
    assert can_work_ticket(support_agent, ticket)
    assert the_contact(hubspot)["properties"]["switchboard_tags"] == "churned"
    assert len(zendesk.tickets) == 1
