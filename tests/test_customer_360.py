"""The customer page's 360 header and timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit import codes
from audit.services import audit_record
from console.selectors import customer_timeline
from tests.console_support import handler_run, outbox, stripe_event, ticket
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_customers():
    now = timezone.now()
    mine = CustomerFactory(
        stripe_customer_id="cus_Mine",
        status="past_due",
        plan_name="Pro",
        last_payment_status="failed",
        last_payment_at=now,
        billing_confirmed_at=now,
        crm_contact_id=None,
    )
    theirs = CustomerFactory(stripe_customer_id="cus_Theirs")
    failed = stripe_event(
        customer=mine, type="invoice.payment_failed", received_at=now - timedelta(minutes=30)
    )
    handler_run(failed, handler="helpdesk_ticket", note="ticket opened in billing")
    refund = stripe_event(
        customer=mine, type="charge.refunded", received_at=now - timedelta(minutes=20)
    )
    handler_run(refund, handler="crm_update", note="refund synced")
    outbox(
        customer=mine,
        channel="crm",
        state="failed",
        attempts=2,
        last_error="HTTP 503",
        created_at=now - timedelta(minutes=25),
    )
    outbox(
        customer=mine,
        channel="email",
        kind="email_payment_failed",
        state="delivered",
        outcome="sent to customer",
        created_at=now - timedelta(minutes=24),
    )
    ticket(customer=mine, subject="Payment failed for Pro")
    ticket(customer=mine, queue="disputes", subject="Dispute opened")
    audit_record(action=codes.CUSTOMER_UPDATED, target=mine, data={"reason": "fixed the name"})
    audit_record(action=codes.BILLING_REFUND_ISSUED, target=mine, data={"reason": "goodwill"})
    other = stripe_event(customer=theirs, type="invoice.paid", received_at=now)
    handler_run(other, note="THEIRS-RUN")
    outbox(customer=theirs, channel="crm", state="delivered", outcome="THEIRS-SYNC")
    ticket(customer=theirs, subject="THEIRS-TICKET")
    audit_record(action=codes.CUSTOMER_UPDATED, target=theirs, data={"reason": "THEIRS-AUDIT"})
    return mine, theirs


def page_of(client, user, customer, **params):
    client.force_login(user)
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def test_timeline_shows_everything_of_one_customer_and_nothing_of_another(
    client, owner, two_customers
):
    mine, _ = two_customers
    page = page_of(client, owner, mine)
    for expected in (
        "Stripe event invoice.payment_failed",
        "helpdesk_ticket for invoice.payment_failed",
        "CRM: contact upsert",
        "Email: email payment failed",
        "Payment failed for Pro",
        "customers.customer.updated",
        "Stripe event charge.refunded",
        "billing.refund.issued",
        "Dispute opened",
    ):
        assert expected in page, expected
    assert "THEIRS" not in page
    timeline = customer_timeline(mine, owner)
    assert timeline.total == 10
    assert [i.at for i in timeline.items] == sorted((i.at for i in timeline.items), reverse=True)


def test_support_agent_does_not_see_finance_only_items(client, support_agent, two_customers):
    mine, _ = two_customers
    page = page_of(client, support_agent, mine)
    assert "Payment failed for Pro" in page and "invoice.payment_failed" in page
    for hidden in ("charge.refunded", "refund synced", "billing.refund.issued", "Dispute opened"):
        assert hidden not in page, hidden
    assert "shown to owners and finance admins only" in page


def test_header_states_billing_access_links_and_pending_crm_in_words(client, owner, two_customers):
    mine, _ = two_customers
    page = page_of(client, owner, mine)
    assert "Past due on the Pro plan: the last payment failed" in page
    assert "grace" in page
    assert "https://dashboard.stripe.com/test/customers/cus_Mine" in page
    assert "No CRM contact yet: delivery pending since" in page and "2 attempts" in page
    assert "HTTP 503" in page


def test_header_flags_a_conflict_for_review(client, owner):
    c = CustomerFactory(
        stripe_customer_id="cus_C",
        match_state="conflict",
        review_reason="Stripe has no customer cus_C",
        billing_confirmed_at=timezone.now(),
    )
    page = page_of(client, owner, c)
    assert 'id="needs-review"' in page and "Stripe has no customer cus_C" in page


def test_timeline_is_paginated_and_explains_an_empty_history(client, owner):
    empty = CustomerFactory()
    assert "Nothing has happened for this customer yet" in page_of(client, owner, empty)

    busy = CustomerFactory(stripe_customer_id="cus_Busy")
    now = timezone.now()
    for i in range(30):
        stripe_event(
            customer=busy,
            type="customer.updated",
            received_at=now - timedelta(minutes=i),
            object_id=f"marker-{i}",
        )
    first = customer_timeline(busy, owner, page=1)
    second = customer_timeline(busy, owner, page=2)
    assert (first.pages, len(first.items), len(second.items)) == (2, 25, 5)
    assert first.items[-1].at > second.items[0].at
    page2 = page_of(client, owner, busy, page=2)
    assert "page 2 of 2" in page2 and "newer" in page2
    # Not a page number ("²" passes isdigit() but not int(); 5000 digits exceed int()):
    # the first page, not a 500.
    for bad in ("²", "9" * 5000, "-1", "abc"):
        assert "page 1 of 2" in page_of(client, owner, busy, page=bad)
