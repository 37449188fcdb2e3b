"""The customer page (console/views.py): the header's three answers, the timeline in a
support agent's words, who may open it, and finding anyone by any id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit import codes
from audit.services import audit_record
from console.story import customer_story
from tests.console_support import handler_run, outbox, stripe_event, ticket
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PRO = {
    "id": "price_pro",
    "nickname": "Pro",
    "unit_amount": 4900,
    "currency": "usd",
    "recurring": {"interval": "month"},
}
STARTER = {
    "id": "price_starter",
    "nickname": "Starter",
    "unit_amount": 900,
    "currency": "usd",
    "recurring": {"interval": "month"},
}
PERIOD = {"start": 1796083200, "end": 1798761600}  # 1 Dec 2026 – 1 Jan 2027 UTC


def _sub(price, **extra):
    return {
        "id": "sub_Mine",
        "object": "subscription",
        "status": "active",
        "items": {"data": [{"id": "si_1", "price": price}]},
        **extra,
    }


def _invoice(amount, **extra):
    return {
        "id": "in_Mine1",
        "object": "invoice",
        "number": "MINE-0001",
        "currency": "usd",
        "amount_paid": amount,
        "amount_due": amount,
        "payment_intent": "pi_Mine1",
        "charge": "ch_Mine1",
        "subscription": "sub_Mine",
        "lines": {"data": [{"price": PRO, "period": PERIOD, "description": "1 × Pro"}]},
        **extra,
    }


def payload(obj, **extra):
    return {"data": {"object": obj, **extra}}


def page_of(client, user, customer, **params):
    client.force_login(user)
    response = client.get(reverse("console_customer", args=[customer.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def paying():
    """An active Pro customer who paid 49.00 USD, then asked for help."""
    now = timezone.now()
    mine = CustomerFactory(
        email="ada@example.test",
        name="Ada Lovelace",
        stripe_customer_id="cus_Mine",
        subscription_id="sub_Mine",
        status="active",
        plan_name="Pro",
        current_period_end=now + timedelta(days=20),
        last_payment_status="succeeded",
        last_payment_at=now - timedelta(hours=2),
        billing_confirmed_at=now,
        crm_contact_id=None,
        helpdesk_user_id="zd-77",
        match_state="linked_by_stripe_id",
    )
    created = stripe_event(
        customer=mine,
        type="customer.subscription.created",
        received_at=now - timedelta(hours=3),
        object_id="sub_Mine",
        payload=payload(_sub(PRO)),
    )
    handler_run(created, handler="crm_update", note="contact updated")
    paid = stripe_event(
        customer=mine,
        type="invoice.paid",
        received_at=now - timedelta(hours=2),
        object_id="in_Mine1",
        payload=payload(_invoice(4900)),
    )
    handler_run(paid, handler="customer_projection", note="status active")
    handler_run(paid, handler="crm_update", note="contact updated")
    handler_run(paid, handler="helpdesk_ticket", note="nothing to do")
    ticket(customer=mine, subject="How do I export my data?")
    theirs = CustomerFactory(stripe_customer_id="cus_Theirs", email="bob@example.test")
    stripe_event(
        customer=theirs,
        type="invoice.paid",
        payload=payload(
            _invoice(100, id="in_T", payment_intent="pi_T", charge="ch_T", subscription="sub_T")
        ),
        object_id="in_T",
    )
    ticket(customer=theirs, subject="THEIRS-TICKET")
    return mine


def test_header_answers_paying_charged_and_what_happened_last(client, support_agent, paying):
    page = page_of(client, support_agent, paying)
    # Is this customer paying?
    assert "Pro — 49.00 USD/month, <span" in page and ">active</span>" in page
    assert 'class="sb-badge sb-good" id="status-badge">Active' in page
    assert "Has access" in page and "Renews on" in page
    # Why were they charged?
    assert "49.00 USD" in page and "for Pro, 01 Dec 2026 – 01 Jan 2027 (invoice MINE-0001)" in page
    # What happened last?
    assert "Ticket opened: How do I export my data?" in page
    assert "1 open ticket" in page
    # Links with their state, and nothing of another customer.
    assert "https://dashboard.stripe.com/test/customers/cus_Mine" in page
    assert "zd-77" in page and "No CRM contact yet" in page
    assert "Linked by Stripe id" in page
    assert "THEIRS" not in page


def test_after_a_finance_admin_cancelled_the_header_names_them_not_the_customer(
    client, owner, finance_admin, paying
):
    paying.cancel_at_period_end = True
    paying.save()
    audit_record(
        action=codes.BILLING_SUBSCRIPTION_CANCELED,
        actor=finance_admin,
        target=paying,
        data={"kind": "cancel_at_period_end", "reason": "asked by phone"},
    )
    page = page_of(client, owner, paying)
    assert "canceled by the customer" not in page
    assert f"does not renew: canceled by {finance_admin}" in page and "asked by phone" in page
    assert "Last staff action: <strong>" in page and "canceled the subscription" in page


def test_timeline_folds_handler_runs_into_their_event_in_plain_words(client, owner, paying):
    page = page_of(client, owner, paying)
    assert "Paid 49.00 USD" in page
    assert "CRM updated, helpdesk: nothing to do" in page
    assert "Subscribed: Pro — 49.00 USD/month" in page
    # The raw runs are behind the disclosure, not rows of their own.
    assert "<details><summary>Details</summary>" in page
    story = customer_story(paying, owner)
    assert [s.title for s in story.items] == [
        "Ticket opened: How do I export my data?",
        "Paid 49.00 USD",
        "Subscribed: Pro — 49.00 USD/month",
    ]
    assert any("customer_projection: succeeded" in d for d in story.items[1].details)


def test_plan_change_refund_dispute_email_and_staff_action_read_as_sentences(
    client, owner, support_agent, finance_admin, paying
):
    now = timezone.now()
    stripe_event(
        customer=paying,
        type="customer.subscription.updated",
        received_at=now,
        payload=payload(_sub(STARTER), previous_attributes={"items": {"data": [{"price": PRO}]}}),
    )
    charge = {
        "id": "ch_Mine1",
        "amount": 4900,
        "amount_refunded": 1000,
        "currency": "usd",
        "refunds": {"data": [{"id": "re_Mine1"}]},
    }
    stripe_event(
        customer=paying,
        type="charge.refunded",
        received_at=now,
        object_id="ch_Mine1",
        payload=payload(charge),
    )
    stripe_event(
        customer=paying,
        type="charge.dispute.created",
        received_at=now,
        object_id="dp_Mine1",
        payload=payload(
            {
                "id": "dp_Mine1",
                "charge": "ch_Mine1",
                "amount": 4900,
                "currency": "usd",
                "status": "needs_response",
                "reason": "fraudulent",
            }
        ),
    )
    outbox(
        customer=paying,
        channel="email",
        kind="email_payment_failed",
        state="delivered",
        outcome="sent to ada@example.test",
    )
    audit_record(
        action=codes.BILLING_REFUND_ISSUED,
        actor=finance_admin,
        target=paying,
        data={"amount": 1000, "currency": "usd", "reason": "two days of outage"},
    )
    finance = page_of(client, owner, paying)
    assert "Plan changed from Pro — 49.00 USD/month to Starter — 9.00 USD/month" in finance
    assert "Refunded 10.00 USD of 49.00 USD" in finance
    assert "refunded a payment: 10.00 USD" in finance and "two days of outage" in finance
    assert "Dispute opened of 49.00 USD: needs response" in finance
    assert "Email sent to the customer: payment failed" in finance

    support = page_of(client, support_agent, paying)
    assert "Dispute opened: needs response" in support  # the dispute and its state…
    assert "Dispute opened of 49.00 USD" not in support  # …without its amount
    for hidden in ("Refunded 10.00 USD", "two days of outage", "refunded a payment"):
        assert hidden not in support, hidden


def test_timeline_filters_by_kind_and_pages(client, owner, paying):
    page = page_of(client, owner, paying, kind="tickets")
    assert "Ticket opened" in page and "Paid 49.00 USD" not in page
    payments = customer_story(paying, owner, kind="payments")
    assert [s.title for s in payments.items] == ["Paid 49.00 USD"]

    busy = CustomerFactory(stripe_customer_id="cus_Busy")
    now = timezone.now()
    for i in range(30):
        stripe_event(customer=busy, type="customer.updated", received_at=now - timedelta(minutes=i))
    first = customer_story(busy, owner, page=1)
    second = customer_story(busy, owner, page=2)
    assert (first.pages, len(first.items), len(second.items)) == (2, 25, 5)
    assert first.items[-1].at > second.items[0].at
    assert "page 2 of 2" in page_of(client, owner, busy, page=2)
    for bad in ("²", "9" * 5000, "-1", "abc"):
        assert "page 1 of 2" in page_of(client, owner, busy, page=bad)
    assert "Nothing has happened for this customer yet" in page_of(client, owner, CustomerFactory())


def test_header_flags_a_conflict_for_review(client, owner):
    c = CustomerFactory(
        stripe_customer_id="cus_C",
        match_state="conflict",
        review_reason="Stripe has no customer cus_C",
        billing_confirmed_at=timezone.now(),
    )
    page = page_of(client, owner, c)
    assert 'id="needs-review"' in page and "Stripe has no customer cus_C" in page


def test_every_role_reads_the_page_and_anonymous_is_sent_to_login(client, staff_by_role, paying):
    url = reverse("console_customer", args=[paying.pk])
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    for user in staff_by_role.values():
        client.force_login(user)
        assert client.get(url).status_code == 200
    # Only owners get the identity form's link.
    client.force_login(staff_by_role["owner"])
    assert 'id="edit-identity"' in client.get(url).content.decode()
    client.force_login(staff_by_role["support_agent"])
    assert 'id="edit-identity"' not in client.get(url).content.decode()


def test_staff_without_the_customer_permission_get_403(client, django_user_model, paying):
    plain = django_user_model.objects.create_user("plain", password="x", is_staff=True)
    client.force_login(plain)
    assert client.get(reverse("console_customer", args=[paying.pk])).status_code == 403
    assert client.get(reverse("console_search"), {"q": "ada"}).status_code == 403


@pytest.mark.parametrize(
    "query",
    [
        "ada@example.test",
        "Lovelace",
        "cus_Mine",
        "sub_Mine",
        "in_Mine1",
        "ch_Mine1",
        "pi_Mine1",
        "re_Mine1",
        "dp_Mine1",
        "zd-77",
        "crm-42",
    ],
)
def test_find_anyone_by_email_name_any_stripe_id_crm_or_helpdesk_id(
    client, support_agent, paying, query
):
    paying.crm_contact_id = "crm-42"
    paying.save()
    stripe_event(
        customer=paying,
        type="charge.refunded",
        object_id="ch_Mine1",
        payload=payload({"id": "ch_Mine1", "refunds": {"data": [{"id": "re_Mine1"}]}}),
    )
    stripe_event(
        customer=paying,
        type="charge.dispute.created",
        object_id="dp_Mine1",
        payload=payload({"id": "dp_Mine1", "charge": "ch_Mine1"}),
    )
    client.force_login(support_agent)
    response = client.get(reverse("console_search"), {"q": query})
    assert response.status_code == 302, query
    assert response["Location"] == reverse("console_customer", args=[paying.pk])


def test_admin_list_search_finds_a_customer_by_charge_id_and_links_the_page(
    client, support_agent, paying
):
    client.force_login(support_agent)
    page = client.get(reverse("admin:customers_customer_changelist"), {"q": "pi_Mine1"})
    body = page.content.decode()
    assert reverse("console_customer", args=[paying.pk]) in body and "bob@" not in body
    nothing = client.get(reverse("console_search"), {"q": "ch_Nobody"}).content.decode()
    assert "No customer matches" in nothing


def test_a_past_due_customer_reads_as_retrying_not_renewing(client, support_agent, paying):
    paying.status = "past_due"
    paying.last_payment_status = "failed"
    paying.save()
    stripe_event(
        customer=paying,
        type="invoice.payment_failed",
        payload=payload(_invoice(4900, attempt_count=2, amount_paid=0)),
    )
    page = page_of(client, support_agent, paying)
    assert "Renewal not paid: Stripe is retrying the card" in page and "Renews on" not in page
    assert "Payment of 49.00 USD failed" in page and "attempt 2" in page
    assert "Access kept for now (grace)" in page


def test_refund_amounts_in_the_header_are_for_finance_only(client, owner, support_agent, paying):
    paying.last_payment_status = "partially_refunded"
    paying.save()
    charge = {"id": "ch_Mine1", "amount": 4900, "amount_refunded": 1000, "currency": "usd"}
    stripe_event(customer=paying, type="charge.refunded", payload=payload(charge))
    assert "Refunded 10.00 USD of 49.00 USD" in page_of(client, owner, paying)
    support = page_of(client, support_agent, paying)
    assert "Partially refunded" in support and "Refunded 10.00 USD" not in support
