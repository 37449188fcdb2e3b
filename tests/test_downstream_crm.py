"""CRM matching rules and the local (token-less) implementations."""

from __future__ import annotations

import logging

import pytest
from django.apps import apps
from django.core import mail

from customers.models import MatchState
from delivery.models import OutboxMessage, OutboxState
from devkit.fakes.hubspot import CONTACTS
from support.models import Ticket
from tests.factories import CustomerFactory
from tests.fakes.fixtures import run_all
from tests.test_downstream_journeys import World

pytestmark = pytest.mark.django_db


def test_existing_contact_found_by_email_is_linked_not_duplicated(webhook, hubspot):
    existing = hubspot.add_contact({"email": "lin@example.test", "firstname": "Lin"})
    world = World(webhook)
    world.subscribe()
    run_all()
    assert list(hubspot.contacts) == [existing["id"]]
    assert world.customer().crm_contact_id == existing["id"]
    assert existing["properties"]["switchboard_customer_id"] == str(world.customer().pk)
    assert not hubspot.calls("POST", CONTACTS, status=201)


def test_two_matching_contacts_mark_the_customer_for_review_not_merged(webhook, hubspot):
    world = World(webhook)
    world.send("customer.created", world.cus)
    run_all()  # the contact now carries the customer's stable key ...
    customer = world.customer()
    customer.crm_contact_id = None  # ... but our link to it was lost,
    customer.save(update_fields=["crm_contact_id"])
    hubspot.add_contact({"email": "lin@example.test"})  # and someone made a second one by hand
    hubspot.contacts[next(iter(hubspot.contacts))]["properties"]["email"] = "old@example.test"

    world.send("customer.subscription.created", world.sub("active"))
    run_all()
    customer.refresh_from_db()
    assert customer.match_state == MatchState.CONFLICT
    assert "2 CRM contacts match" in customer.review_reason
    assert customer.crm_contact_id is None and len(hubspot.contacts) == 2
    row = OutboxMessage.objects.filter(channel="crm").latest("pk")
    assert row.state == OutboxState.DEAD
    assert Ticket.objects.get(customer=customer).queue.slug == "human_review"
    # Further events leave the CRM alone until a person has decided.
    world.send("customer.updated", world.cus)
    run_all()
    assert OutboxMessage.objects.filter(channel="crm").latest("pk") == row


def test_without_tokens_the_local_implementations_are_used_and_said_at_start_up(
    webhook, settings, caplog
):
    settings.HUBSPOT_TOKEN = settings.ZENDESK_TOKEN = ""
    with caplog.at_level(logging.INFO):
        apps.get_app_config("crm_sync").ready()
        apps.get_app_config("support").ready()
    assert "no HUBSPOT_TOKEN set, using the local logging CRM" in caplog.text
    assert "no ZENDESK_TOKEN set, using the local helpdesk" in caplog.text

    world = World(webhook)
    world.subscribe()
    world.send("invoice.payment_failed", world.failing_invoice())
    run_all()
    ticket = Ticket.objects.get()
    assert ticket.queue.slug == "billing" and ticket.external_id == ""
    assert not OutboxMessage.objects.exclude(
        state__in=[OutboxState.DELIVERED, OutboxState.SUPERSEDED]
    ).exists()
    assert world.customer().crm_contact_id is None
    assert len([m for m in mail.outbox if m.to == ["lin@example.test"]]) == 1


def test_zendesk_token_without_base_url_pauses_the_helpdesk_with_one_alert(
    settings, django_capture_on_commit_callbacks
):
    from support.rules import TICKET_RULES
    from support.services import ticket_open

    settings.ZENDESK_TOKEN, settings.ZENDESK_BASE_URL = "zendesk-token", ""
    rule = next(r for r in TICKET_RULES if r.queue == "billing")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            ticket_open(
                customer=CustomerFactory(),
                rule=rule,
                situation_key=f"payment_failed:in_{n}",
                subject="Payment failed",
                body="-",
            )
    run_all()
    assert OutboxMessage.objects.filter(state=OutboxState.PAUSED).count() == 3
    paused = [m for m in mail.outbox if "paused" in m.subject]
    assert len(paused) == 1 and "ZENDESK_BASE_URL" in paused[0].subject
