"""Erasing a person on request (GDPR Art. 17), and retention purges.

The erasure reaches every place a person's data lives: the customer record, ticket
bodies, outbox payloads, stored Stripe event payloads, the audit trail (tombstoned, the
one audited rewrite) and, through the outbox, the CRM contact (HubSpot's GDPR delete) and
the helpdesk user (Zendesk's permanent deletion). Later Stripe events never write the
data back, and nothing else is sent to a vendor about the person.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from audit import codes
from audit.models import AuditEntry
from billing.models import HandlerRun, StripeEvent
from console.retention import retention_purge
from crm_sync.lifecycle import contact_properties
from crm_sync.sync import CONTACT_SYNC, contact_coalesce_key
from customers.models import Customer
from customers.services import customer_erase, customer_update
from delivery.models import OutboxMessage, OutboxState
from delivery.outbox import outbox_write
from support.models import Ticket
from support.rules import TICKET_RULES
from support.services import ticket_open
from tests.console_support import handler_run, outbox, stripe_event
from tests.factories import CustomerFactory
from tests.fakes.fixtures import run_all

pytestmark = pytest.mark.django_db

EMAIL, NAME = "ada.erase@example.test", "Ada Erasable"


@pytest.fixture
def synced(hubspot, zendesk, owner, django_capture_on_commit_callbacks):
    """A customer known everywhere: a HubSpot contact, a Zendesk user with a ticket, a
    stored Stripe event carrying the email, and staff audit entries naming them."""
    customer = CustomerFactory(email=EMAIL, name=NAME, stripe_customer_id="cus_erase1")
    customer_update(actor=owner, customer_id=customer.pk, changes={"name": NAME + " Jr"})
    customer.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        outbox_write(
            channel="crm",
            kind=CONTACT_SYNC,
            customer=customer,
            dedupe_key=f"crm:contact:{customer.pk}:t",
            coalesce_key=contact_coalesce_key(customer),
            payload={"properties": contact_properties(customer)},
        )
        ticket_open(
            customer=customer,
            rule=next(r for r in TICKET_RULES if r.queue == "billing"),
            situation_key="payment_failed:in_erase",
            subject=f"Payment failed: {NAME}",
            body=f"Customer {customer.display_name}, {EMAIL}",
        )
    run_all()
    customer.refresh_from_db()
    assert customer.crm_contact_id and customer.helpdesk_user_id
    stripe_event(
        customer=customer,
        type="customer.updated",
        payload={
            "id": "evt_erase1",
            "type": "customer.updated",
            "data": {
                "object": {"id": "cus_erase1", "object": "customer", "email": EMAIL, "name": NAME}
            },
        },
    )
    return customer


def test_owner_erases_a_customer_everywhere(
    synced, hubspot, zendesk, owner, django_capture_on_commit_callbacks
):
    contact_id, user_id = synced.crm_contact_id, synced.helpdesk_user_id
    with django_capture_on_commit_callbacks(execute=True):
        assert customer_erase(actor=owner, customer_id=synced.pk, reason="request #42") is True
    run_all()

    customer = Customer.objects.get(pk=synced.pk)
    assert (customer.email, customer.name) == ("", "")
    assert customer.erased_at is not None
    ticket = Ticket.objects.get(customer=customer)
    assert EMAIL not in ticket.body and NAME not in ticket.subject
    for row in OutboxMessage.objects.filter(customer=customer):
        assert EMAIL not in str(row.payload) and NAME not in str(row.payload)
    event = StripeEvent.objects.get(stripe_customer_id="cus_erase1")
    assert EMAIL not in str(event.payload) and event.payload["data"]["object"]["id"] == "cus_erase1"
    # The vendors deleted the person for good.
    assert contact_id in hubspot.gdpr_deleted and contact_id not in hubspot.contacts
    assert int(user_id) in zendesk.purged_users and int(user_id) not in zendesk.users
    # The audit trail keeps every entry, with the person's data tombstoned.
    entries = AuditEntry.objects.all()
    assert not [
        e
        for e in entries
        if EMAIL in str(e.data)
        or NAME in str(e.data)
        or EMAIL in e.target_label
        or NAME in e.target_label
    ]
    assert entries.filter(action=codes.CUSTOMER_UPDATED, target_label__startswith="erased").exists()
    erased = entries.get(action=codes.CUSTOMER_ERASED)
    assert erased.actor == owner and erased.data["reason"] == "request #42"
    # Erasing twice does nothing more.
    assert customer_erase(actor=owner, customer_id=synced.pk, reason="again") is False


def test_later_events_never_bring_the_data_back(synced, owner, hubspot):
    from billing.projection import project

    customer_erase(actor=owner, customer_id=synced.pk, reason="request #43")
    run_all()
    project(
        event_id="evt_erase_later",
        event_type="customer.updated",
        created=timezone.now() + timedelta(minutes=1),
        obj={"id": "cus_erase1", "object": "customer", "email": EMAIL, "name": NAME},
    )
    customer = Customer.objects.get(pk=synced.pk)
    assert (customer.email, customer.name) == ("", "")
    requests_before = len(hubspot.requests)
    from billing.events import BillingEvent
    from crm_sync.sync import crm_update

    note = crm_update(
        BillingEvent(
            event_id="evt_x",
            type="customer.updated",
            created=None,
            livemode=False,
            customer_id=customer.pk,
            stripe_customer_id="cus_erase1",
        )
    )
    run_all()
    assert "erased" in note and len(hubspot.requests) == requests_before


def test_only_owners_may_erase(synced, finance_admin, support_agent, client):
    for person in (finance_admin, support_agent):
        with pytest.raises(PermissionDenied):
            customer_erase(actor=person, customer_id=synced.pk, reason="x")
        client.force_login(person)
        client.post(
            reverse("admin:customers_customer_changelist"),
            {
                "action": "erase_personal_data",
                "_selected_action": [synced.pk],
                "confirm": "erase",
                "reason": "x",
            },
        )
    assert Customer.objects.get(pk=synced.pk).email == EMAIL


def test_admin_action_asks_first_then_erases(synced, owner, client):
    client.force_login(owner)
    url = reverse("admin:customers_customer_changelist")
    page = client.post(url, {"action": "erase_personal_data", "_selected_action": [synced.pk]})
    assert page.status_code == 200 and b"cannot be undone" in page.content
    assert Customer.objects.get(pk=synced.pk).email == EMAIL  # nothing happened yet
    done = client.post(
        url,
        {
            "action": "erase_personal_data",
            "_selected_action": [synced.pk],
            "confirm": "erase",
            "reason": "ticket 7",
        },
    )
    assert done.status_code == 302
    assert Customer.objects.get(pk=synced.pk).erased_at is not None


def test_command_erases_with_yes_and_refuses_without(synced):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("customer_erase", EMAIL, reason="req 9")  # no terminal, no --yes
    call_command("customer_erase", "cus_erase1", reason="req 9", yes=True)
    assert Customer.objects.get(pk=synced.pk).erased_at is not None
    assert AuditEntry.objects.get(action=codes.CUSTOMER_ERASED).actor is None


def test_audit_log_stays_append_only_outside_erasure(owner):
    customer = CustomerFactory()
    customer_update(actor=owner, customer_id=customer.pk, changes={"name": "Someone"})
    entry = AuditEntry.objects.latest("pk")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(target_label="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()


def test_retention_purges_old_rows_in_batches_and_keeps_the_rest(settings):
    settings.RETENTION_BATCH_SIZE = 2
    now = timezone.now()
    old, new = now - timedelta(days=500), now - timedelta(days=1)
    customer = CustomerFactory(stripe_customer_id="cus_retain1")
    for when in (old, old, old, new):
        outbox(customer=customer, created_at=when)
    outbox(customer=customer, state=OutboxState.DEAD, created_at=old)  # a person must look
    old_event = stripe_event(
        customer=customer,
        received_at=old,
        payload={"id": "evt_old", "data": {"object": {"id": "in_1", "email": "x@y.z"}}},
    )
    new_event = stripe_event(customer=customer, received_at=new, payload={"id": "evt_new"})
    handler_run(old_event)
    handler_run(new_event)
    handler_run(old_event, handler="crm_update", status="dead")

    counts = retention_purge(now=now)

    assert counts == {"outbox_rows": 3, "handler_runs": 1, "event_payloads": 1}
    assert OutboxMessage.objects.count() == 2  # the new delivered row and the dead one
    assert set(HandlerRun.objects.values_list("status", flat=True)) == {"succeeded", "dead"}
    old_event.refresh_from_db()
    assert old_event.payload["erased"] is True and "x@y.z" not in str(old_event.payload)
    new_event.refresh_from_db()
    assert new_event.payload == {"id": "evt_new"}
    assert AuditEntry.objects.get(action=codes.RETENTION_PURGED).data["outbox_rows"] == 3
    assert retention_purge(now=now) == {"outbox_rows": 0, "handler_runs": 0, "event_payloads": 0}


def test_erasure_leaves_unrelated_entries_that_merely_contain_the_name(owner):
    """Outside the person's own entries only whole words are theirs: erasing "Max" keeps
    another customer's "maximum" note, and still erases a mention of "Max" himself."""
    person = CustomerFactory(name="Max", email="max@example.test")
    other = CustomerFactory(name="Other Person", email="other@example.test")
    customer_update(actor=owner, customer_id=person.pk, changes={"name": "Max"})
    customer_update(actor=owner, customer_id=other.pk, changes={"name": "Maximum Refund Ltd"})
    customer_update(actor=owner, customer_id=other.pk, changes={"name": "Max and Partners"})
    customer_erase(actor=owner, customer_id=person.pk, reason="request #44")

    about_other = AuditEntry.objects.filter(target_id=str(other.pk))
    texts = [str(e.data) for e in about_other]
    assert any("Maximum Refund Ltd" in text for text in texts)
    assert not any("Max and Partners" in text for text in texts)


def test_erasure_reaches_orders_and_thin_events_fetched_objects(synced, owner):
    from billing.models import Order

    order = Order.objects.create(
        buyer=synced,
        buyer_stripe_customer_id="cus_erase1",
        buyer_email=EMAIL,
        amount=5000,
        currency="usd",
        facts={"ids": {"buyer_email": {"v": EMAIL, "k": [1, 0, "evt_x"]}}},
    )
    thin = stripe_event(
        customer=synced,
        type="invoice.paid",
        payload={"id": "evt_thin_erase", "object": "v2.core.event"},
        resolved={
            "object": {"id": "in_1", "customer_email": EMAIL, "customer_name": NAME},
            "refs": {"invoice": "in_1"},
        },
    )
    customer_erase(actor=owner, customer_id=synced.pk, reason="request #45")

    order.refresh_from_db()
    thin.refresh_from_db()
    assert order.buyer_email == "" and EMAIL not in str(order.facts)
    assert (order.amount, order.currency) == (5000, "usd")  # the business's record stays
    assert EMAIL not in str(thin.resolved) and NAME not in str(thin.resolved)
    assert thin.resolved == {"refs": {"invoice": "in_1"}}
