"""Marketplace orders (issue #15 item 4), through the webhook URL with signed events, on
localstripe: a destination charge paid to a seller's connected account becomes one
order linked to its buyer and seller; a partial refund through the console's two-person
rule reverses the transfer and the application fee; a dispute opens one ticket in the
seller-disputes queue; a connected account's failed payout opens one in the sellers
queue; and every delivery order, duplicate and replay ends in the same order."""

from __future__ import annotations

import io
import random
import uuid

import pytest
import stripe
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from billing import events as billing_events
from billing.handlers import published
from billing.models import (
    ActionState,
    FinanceAction,
    HandlerRun,
    Order,
    RefundRequest,
    StripeEvent,
)
from billing.orders import order_project
from console.models import Alert
from customers.models import Customer
from devkit import stripe_events as events
from support.models import Ticket, TicketStatus
from tests.factories import CustomerFactory, StaffUserFactory
from tests.stripe_support import objects
from tests.stripe_support.fixtures import Webhook, drain
from tests.stripe_support.objects import snap

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ACCT = "acct_1SellerSam0001"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _seller(account: str = ACCT) -> Customer:
    return CustomerFactory(name="Sam Seller", email="sam@seller.test", stripe_account_id=account)


def _newest(obj) -> dict:
    """A localstripe object in the newest API shape: a charge without its ``refunds``
    list, charges and payment intents without ``invoice`` (since basil), a payment
    intent's ``latest_charge`` as an id."""
    data = snap(obj)
    for gone in ("refunds", "invoice", "charges"):
        data.pop(gone, None)
    if isinstance(data.get("latest_charge"), dict):
        data["latest_charge"] = data["latest_charge"]["id"]
    return data


def _destination_payment(amount: int = 10000, fee: int = 1500, account: str = ACCT):
    """A buyer paying ``amount`` to ``account`` in localstripe (destination charge)."""
    pm = objects.card()
    buyer = stripe.Customer.create(email="bea@example.test", name="Bea Buyer", payment_method=pm.id)
    pi = stripe.PaymentIntent.create(
        amount=amount,
        currency="usd",
        customer=buyer.id,
        payment_method=pm.id,
        confirm=True,
        transfer_data={"destination": account},
        application_fee_amount=fee,
    )
    charge = stripe.Charge.retrieve(_newest(pi)["latest_charge"])
    return buyer, pi, charge


def _paid(buyer, pi, charge, base: int) -> list[dict]:
    session = events.checkout_session(payment_intent=pi.id, amount=pi.amount, customer_id=buyer.id)
    return [
        events.event("customer.created", snap(buyer), created=base),
        events.event("checkout.session.completed", session, created=base + 1),
        events.event("payment_intent.succeeded", _newest(pi), created=base + 1),
        events.event("charge.succeeded", _newest(charge), created=base + 1),
    ]


def _deliver(webhook, envelopes, *, one_by_one: bool = False) -> None:
    """Deliver, then process. ``one_by_one``: each delivery applied before the next
    arrives, so the order given is the order applied (one drain of them all sorts a
    customer's events by ``created`` first)."""
    for envelope in envelopes:
        assert webhook.post(envelope).status_code == 200
        if one_by_one:
            drain()
    drain()


def test_order_paid_is_one_order_with_buyer_and_seller_in_any_order(stripe_api, webhook):
    seller = _seller()
    rng = random.Random(15)
    for run in range(3):
        buyer, pi, charge = _destination_payment()
        paid = _paid(buyer, pi, charge, base=1_800_000_000 + run * 100)
        batch = [paid, list(reversed(paid)), rng.sample(paid * 2, len(paid) * 2)][run]
        _deliver(webhook, batch, one_by_one=True)

        order = Order.objects.get(payment_intent_id=pi.id)
        assert order.state == "paid"
        assert order.buyer == Customer.objects.get(stripe_customer_id=buyer.id)
        assert order.seller == seller
        assert (order.amount, order.application_fee_amount, order.currency) == (
            10000,
            1500,
            "usd",
        )
        assert (order.charge_id, order.seller_account_id) == (charge.id, ACCT)
        assert order.checkout_session_id.startswith("cs_test")
        assert order.transfer_id.startswith("tr_")
        assert order.buyer.marketplace_role == "buyer"

    # The published contract the product webhooks are built on.
    row = StripeEvent.objects.filter(type="charge.succeeded", object_id=charge.id).get()
    facts = billing_events.order_of(published(row))
    assert facts == billing_events.OrderFacts(
        order_id=order.pk,
        state="paid",
        buyer_customer_id=order.buyer.pk,
        seller_customer_id=seller.pk,
        amount=10000,
        currency="usd",
        amount_refunded=0,
        application_fee_amount=1500,
        payment_intent_id=pi.id,
        charge_id=charge.id,
        checkout_session_id=order.checkout_session_id,
        seller_account_id=ACCT,
    )
    # The event that made the order says so in its changes (what order webhooks key on).
    runs = HandlerRun.objects.filter(
        event__object_id__in=[pi.id, charge.id, order.checkout_session_id],
        handler="customer_projection",
    )
    assert sum("order_created" in (run.changes or []) for run in runs) == 1
    assert sum("order_state" in (run.changes or []) for run in runs) == 1


def test_subscription_payment_is_no_order(stripe_api, webhook):
    on_plan = objects.plan("plan_pro", 2000)
    customer, sub, _ = objects.subscriber("sub@example.test", on_plan)
    invoice = stripe.Invoice.retrieve(sub.latest_invoice)
    pi = stripe.PaymentIntent.retrieve(invoice.payment_intent)
    charge = stripe.Charge.retrieve(_newest(pi)["latest_charge"])
    # Newest shapes name no invoice: billing asks Stripe's InvoicePayments.
    _deliver(
        webhook,
        [
            events.event("payment_intent.succeeded", _newest(pi)),
            events.event("charge.succeeded", _newest(charge)),
        ],
    )
    assert not Order.objects.exists()


def test_partial_refund_through_the_two_person_rule_reverses_transfer_and_fee(
    stripe_api, webhook, support_agent, finance_admin
):
    seller = _seller()
    buyer, pi, charge = _destination_payment(amount=10000, fee=1500)
    _deliver(webhook, _paid(buyer, pi, charge, base=1_800_000_000))
    order = Order.objects.get(payment_intent_id=pi.id)
    agent = _client(support_agent)

    page = agent.get(reverse("console_order", args=[order.pk]))
    assert page.status_code == 200
    refund_url = reverse("billing:refund", args=[order.buyer.pk])
    assert f"{refund_url}?charge={charge.id}".encode() in page.content
    assert b"Sam Seller" in page.content and b"Bea Buyer" in page.content

    form = {
        "charge": charge.id,
        "amount": "25.00",
        "reason_code": "requested_by_customer",
        "note": "one item never arrived",
        "key": str(uuid.uuid4()),
    }
    preview = agent.post(refund_url, form)
    assert b"the transfer to the seller is reversed and the application fee refunded" in (
        preview.content
    )
    response = agent.post(refund_url, {**form, "confirm": "Confirm"})
    assert response.status_code == 302
    request = RefundRequest.objects.get(charge_id=charge.id)
    assert stripe.Refund.list(charge=charge.id).data == []  # a request, nothing sent

    # Another support agent may not approve it: 403, and still nothing in Stripe.
    other_agent = StaffUserFactory(username="agent2@example.test", role="support_agent")
    decide = reverse("billing:refund_request", args=[request.pk])
    refused = _client(other_agent).post(decide, {"decision": "approve", "note": "ok"})
    assert refused.status_code == 403
    assert stripe.Refund.list(charge=charge.id).data == []

    approved = _client(finance_admin).post(decide, {"decision": "approve", "note": "checked"})
    assert approved.status_code == 302
    action = FinanceAction.objects.get(refund_request=request)
    assert action.state == ActionState.SUBMITTED
    assert action.params["connect"] == {"reverse_transfer": True, "refund_application_fee": True}
    [refund] = stripe.Refund.list(charge=charge.id).data
    assert refund.amount == 2500 and refund.transfer_reversal.startswith("trr_")
    charge = stripe.Charge.retrieve(charge.id)
    # In proportion: a quarter of the 85.00 transfer and of the 15.00 fee.
    assert stripe.Transfer.retrieve(charge.transfer).amount_reversed == 2125
    assert stripe.ApplicationFee.retrieve(charge.application_fee).amount_refunded == 375
    order.refresh_from_db()
    assert order.state == "paid"  # until Stripe's events say otherwise

    _deliver(
        webhook,
        [
            events.event("refund.created", snap(refund)),
            events.event("charge.refunded", _newest(charge)),
        ],
    )
    order.refresh_from_db()
    assert (order.state, order.amount_refunded) == ("partially_refunded", 2500)
    action.refresh_from_db()
    assert action.state == ActionState.CONFIRMED
    assert order.seller == seller


def _dispute_events(charge, base: int, *, outcome: str = "lost") -> tuple[dict, dict]:
    dispute = events.dispute(_newest(charge))
    opened = events.event("charge.dispute.created", dispute, created=base + 50)
    closed = events.event(
        "charge.dispute.closed", {**dispute, "status": outcome}, created=base + 80
    )
    return opened, closed


def test_dispute_on_a_seller_order_opens_one_seller_disputes_ticket(stripe_api, webhook):
    seller = _seller()
    for run, dispute_first in enumerate((False, True)):
        buyer, pi, charge = _destination_payment()
        base = 1_800_000_000 + run * 1000
        paid = _paid(buyer, pi, charge, base=base)
        opened, closed = _dispute_events(charge, base, outcome="won")
        # A dispute processed before any event of its payment: the order learns its
        # seller from the charge (one Stripe read), so it is still the seller's ticket.
        batch = [opened, *paid, opened] if dispute_first else [*paid, opened, opened]
        _deliver(webhook, batch)

        order = Order.objects.get(payment_intent_id=pi.id)
        assert order.state == "disputed" and order.seller == seller
        dispute_id = opened["data"]["object"]["id"]
        [ticket] = Ticket.objects.filter(situation_key=f"dispute:{dispute_id}")
        assert ticket.queue.slug == "seller_disputes"
        assert f"Order: #{order.pk}" in ticket.body
        assert "Bea Buyer" in ticket.body and "Sam Seller" in ticket.body
        assert ACCT in ticket.body and f"order #{order.pk}" in ticket.subject
        assert ticket.customer == order.buyer

        _deliver(webhook, [closed, closed])
        ticket.refresh_from_db()
        order.refresh_from_db()
        assert ticket.status == TicketStatus.SOLVED and order.state == "won"
    assert Ticket.objects.filter(queue__slug="seller_disputes").count() == 2
    assert not Ticket.objects.filter(queue__slug="disputes").exists()


def test_payout_failed_on_a_connected_account_opens_one_seller_ticket(stripe_api, webhook):
    seller = _seller()
    payout = events.payout(amount=8500)
    failed = events.event("payout.failed", payout, account=ACCT)
    # Delivered twice, and once more as a second event about the same payout.
    again = events.event("payout.failed", payout, account=ACCT)
    _deliver(webhook, [failed, failed, again])
    [ticket] = Ticket.objects.filter(queue__slug="sellers")
    assert ticket.customer == seller and ticket.situation_key == f"payout_failed:{payout['id']}"
    assert payout["id"] in ticket.subject and "85.00 USD" in ticket.body
    assert "account_closed" in ticket.body

    # The platform's own payout is no seller's; an unknown account alerts a person.
    _deliver(
        webhook,
        [
            events.event("payout.failed", events.payout()),
            events.event("payout.failed", events.payout(), account="acct_1Unknown0000"),
        ],
    )
    assert Ticket.objects.filter(queue__slug="sellers").count() == 1
    assert Alert.objects.filter(key="seller_unknown:acct_1Unknown0000").exists()


def test_payout_failed_reaches_the_console_through_a_connect_endpoint(
    stripe_api, webhook, settings
):
    """``stripe_webhook_setup --connect``: a second endpoint with its own signing secret."""
    settings.STRIPE_CONNECT_WEBHOOK_SECRET = "whsec_connect_endpoint_secret"
    out = io.StringIO()
    call_command("stripe_webhook_setup", "--connect", "--base-url", "http://testserver", stdout=out)
    url = out.getvalue().strip().splitlines()[-1].removeprefix("http://testserver")
    assert url != webhook.url
    seller = _seller()
    connect = Webhook(
        url=url,
        secret=settings.STRIPE_CONNECT_WEBHOOK_SECRET,
        client=webhook.client,
        on_commit=webhook.on_commit,
    )
    failed = events.event("payout.failed", events.payout(), account=ACCT)
    # Signed with the platform endpoint's secret, it is refused on the Connect endpoint.
    assert connect.post(failed, secret=settings.STRIPE_WEBHOOK_SECRET).status_code == 400
    assert connect.post(failed).status_code == 200
    drain()
    assert Ticket.objects.get(queue__slug="sellers").customer == seller


def _journey(charge, buyer, pi, base: int) -> list[dict]:
    """Paid, partly refunded (refund object and charge), disputed, dispute lost."""
    refunded = {**_newest(charge), "amount_refunded": 3000, "refunded": False}
    refund = events.refund(_newest(charge), amount=3000)
    opened, closed = _dispute_events(charge, base, outcome="lost")
    return [
        *_paid(buyer, pi, charge, base),
        events.event("refund.created", {**refund, "status": "pending"}, created=base + 20),
        events.event("refund.updated", refund, created=base + 21),
        events.event("charge.refunded", refunded, created=base + 21),
        opened,
        events.event(
            "charge.dispute.updated",
            {**opened["data"]["object"], "status": "under_review"},
            created=base + 60,
        ),
        closed,
    ]


def test_every_delivery_order_duplicate_and_replay_ends_in_the_same_order(stripe_api, webhook):
    _seller()
    rng = random.Random(1504)
    finals = set()
    for run in range(5):
        buyer, pi, charge = _destination_payment()
        journey = _journey(charge, buyer, pi, base=1_800_000_000 + run * 1000)
        if run == 0:
            batch = journey
        elif run == 1:
            batch = list(reversed(journey))
        else:
            batch = rng.sample(journey, len(journey)) + rng.sample(journey, 3)
        _deliver(webhook, batch, one_by_one=True)
        order = Order.objects.get(payment_intent_id=pi.id)
        finals.add((order.state, order.amount_refunded, order.amount, order.seller_account_id))
        tickets = Ticket.objects.filter(customer=order.buyer).count()

        # Replayed into the projection once more, every event in a new order: nothing moves.
        rows = list(
            StripeEvent.objects.filter(stripe_id__in=[e["id"] for e in journey]).order_by("?")
        )
        for row in rows:
            result = order_project(
                event_id=row.stripe_id,
                event_type=row.type,
                created=row.created,
                obj=row.data_object,
            )
            assert result.changes == []
        order.refresh_from_db()
        assert (order.state, order.amount_refunded) == ("lost", 3000)
        assert Ticket.objects.filter(customer=order.buyer).count() == tickets == 1
    assert finals == {("lost", 3000, 10000, ACCT)}
    assert Order.objects.count() == 5


def test_orders_list_filters_and_explains_the_empty_state(
    stripe_api, webhook, owner, support_agent
):
    agent = _client(support_agent)
    empty = agent.get(reverse("console_orders"))
    assert empty.status_code == 200 and b'id="orders-empty"' in empty.content
    assert b"No orders yet" in empty.content

    seller = _seller()
    buyer, pi, charge = _destination_payment()
    _deliver(webhook, _paid(buyer, pi, charge, base=1_800_000_000))
    order = Order.objects.get(payment_intent_id=pi.id)
    listing = agent.get(reverse("console_orders"), {"state": "paid", "seller": ACCT})
    assert reverse("console_order", args=[order.pk]).encode() in listing.content
    by_id = agent.get(reverse("console_orders"), {"seller": str(seller.pk)})
    assert reverse("console_order", args=[order.pk]).encode() in by_id.content
    none = agent.get(reverse("console_orders"), {"state": "refunded"})
    assert b"No order matches these filters" in none.content

    # Find-by-id: any id of the payment leads to the order.
    # (the buyer is found too: the page lists both.)
    for ref in (pi.id, charge.id, order.checkout_session_id, order.transfer_id):
        found = agent.get(reverse("console_search"), {"q": ref})
        assert reverse("console_order", args=[order.pk]).encode() in (
            found.content if found.status_code == 200 else found["Location"].encode()
        )
    by_account = _client(owner).get(reverse("console_search"), {"q": ACCT})
    assert reverse("console_order", args=[order.pk]).encode() in by_account.content
    assert reverse("console_customer", args=[seller.pk]).encode() in by_account.content


def test_seller_link_made_after_the_orders_arrived(stripe_api, webhook, owner):
    buyer, pi, charge = _destination_payment(account="acct_1LaterLinked01")
    _deliver(webhook, _paid(buyer, pi, charge, base=1_800_000_000))
    order = Order.objects.get(payment_intent_id=pi.id)
    assert order.seller is None and order.seller_account_id == "acct_1LaterLinked01"

    seller = CustomerFactory(name="Late Seller")
    response = _client(owner).post(
        f"/admin/customers/customer/{seller.pk}/change/",
        {
            "email": seller.email,
            "name": seller.name,
            "marketplace_role": "none",
            "stripe_account_id": "acct_1LaterLinked01",
        },
    )
    assert response.status_code == 302
    seller.refresh_from_db()
    order.refresh_from_db()
    assert seller.marketplace_role == "seller" and order.seller == seller

    taken = _client(owner).post(
        "/admin/customers/customer/add/",
        {
            "email": "x@example.test",
            "marketplace_role": "none",
            "stripe_account_id": "acct_1LaterLinked01",
        },
    )
    assert taken.status_code == 200 and b"already linked" in taken.content
    not_account = _client(owner).post(
        "/admin/customers/customer/add/",
        {"email": "y@example.test", "marketplace_role": "none", "stripe_account_id": "cus_nope"},
    )
    assert b"starts with &#x27;acct_&#x27;" in not_account.content


@pytest.mark.django_db(transaction=True)
def test_demo_marketplace_seed_makes_a_seller_and_two_orders_once(stripe_api):
    out = io.StringIO()
    call_command("demo_marketplace_seed", "--process", stdout=out)
    assert "Seeded the demo marketplace" in out.getvalue() and "answers [200]" in out.getvalue()
    seller = Customer.objects.get(stripe_account_id="acct_1DemoSellerShop01")
    orders = Order.objects.order_by("amount")
    assert [(o.state, o.amount, o.amount_refunded, o.seller) for o in orders] == [
        ("paid", 4900, 0, seller),
        ("partially_refunded", 12000, 3000, seller),
    ]
    again = io.StringIO()
    call_command("demo_marketplace_seed", "--process", stdout=again)
    assert "already seeded" in again.getvalue() and Order.objects.count() == 2


def test_order_pages_answer_every_role_and_refuse_anonymous(staff_by_role):
    """Guest buyer and unlinked seller, odd filters: every role reads, no one gets a 5xx;
    only roles that may request a refund see the refund button."""
    buyer = CustomerFactory(stripe_customer_id="cus_1OrderPages01")
    linked = Order.objects.create(
        payment_intent_id="pi_1OrderPages01",
        charge_id="ch_1OrderPages01",
        state="disputed",
        buyer=buyer,
        buyer_stripe_customer_id=buyer.stripe_customer_id,
        seller_account_id="acct_1NobodyYet0001",
        amount=5000,
        currency="eur",
        application_fee_amount=500,
        facts={
            "disputes": {"dp_1": {"k": [1, 0, "e"], "status": "needs_response", "amount": 5000}}
        },
    )
    guest = Order.objects.create(
        checkout_session_id="cs_test_guest1", state="pending", buyer_email="g@example.test"
    )
    paths = [
        reverse("console_orders"),
        reverse("console_orders") + "?state=nonsense&seller=%3Cscript%3E&page=abc",
        reverse("console_orders") + "?page=999",
        reverse("console_order", args=[linked.pk]),
        reverse("console_order", args=[guest.pk]),
        reverse("console_order", args=[999999]),
    ]
    for path in paths:
        assert Client().get(path).status_code == 302  # to the login page
    for role, user in staff_by_role.items():
        client = _client(user)
        for path in paths:
            status = client.get(path).status_code
            assert status == (404 if path.endswith("/999999/") else 200), (role, path)
        page = client.get(reverse("console_order", args=[linked.pk])).content
        assert b'id="order-refund"' in page  # every role may at least request one
        assert b"acct_1NobodyYet0001" in page and b"dp_1" in page
        guest_page = client.get(reverse("console_order", args=[guest.pk])).content
        assert b'id="order-refund"' not in guest_page and b"guest checkout" in guest_page


def test_product_hears_order_paid_once_and_order_refunded_per_refunded_total(
    stripe_api, webhook, product
):
    """A marketplace order paid and partly refunded reaches the product as one signed
    ``order.paid`` and one ``order.refunded``; duplicates, any order and replays add none."""
    from standardwebhooks.webhooks import Webhook

    from tests.fakes.fixtures import run_all

    seller = _seller()
    buyer, pi, charge = _destination_payment()
    base = 1_800_000_000
    paid = _paid(buyer, pi, charge, base)
    refund = events.refund(_newest(charge), amount=3000)
    refunded = [
        events.event("refund.created", refund, created=base + 20),
        events.event(
            "charge.refunded",
            {**_newest(charge), "amount_refunded": 3000, "refunded": False},
            created=base + 21,
        ),
    ]
    rng = random.Random(7)
    _deliver(
        webhook, rng.sample(paid + refunded, 6) + rng.sample(paid + refunded, 3), one_by_one=True
    )
    run_all()

    order = Order.objects.get(payment_intent_id=pi.id)
    assert (order.state, order.amount_refunded) == ("partially_refunded", 3000)
    paid_msgs = product.fake.messages("order.paid", ok=True)
    refunded_msgs = product.fake.messages("order.refunded", ok=True)
    assert len(paid_msgs) == 1
    assert len(refunded_msgs) == 1
    body = Webhook(product.secret).verify(paid_msgs[0].raw, paid_msgs[0].headers)
    assert body["data"]["order_id"] == str(order.pk)
    assert body["data"]["customer_id"] == str(order.buyer.pk)
    assert body["data"]["seller_customer_id"] == str(seller.pk)
    assert body["data"]["amount"] == 10000
    refund_body = Webhook(product.secret).verify(refunded_msgs[0].raw, refunded_msgs[0].headers)
    assert refund_body["data"]["amount_refunded"] == 3000

    # Every event delivered again: the product hears nothing more.
    _deliver(webhook, paid + refunded)
    run_all()
    assert len(product.fake.messages("order.paid")) == 1
    assert len(product.fake.messages("order.refunded")) == 1
