"""A local product endpoint (devkit/fakes/product.py) registered as a ProductEndpoint, and a
Stripe customer whose events reach the webhook URL, for the provisioning tests."""

from __future__ import annotations

import time

import pytest

from customers.models import Customer
from devkit import stripe_events as events
from devkit.fakes.product import FakeProduct
from provisioning.endpoints import new_secret
from provisioning.models import ProductEndpoint


class Product:
    def __init__(self, fake: FakeProduct, endpoint: ProductEndpoint, secret: str) -> None:
        self.fake = fake
        self.endpoint = endpoint
        self.secret = secret


@pytest.fixture
def product(sync_settings, db):
    fake = FakeProduct().start()
    secret = new_secret()
    endpoint = ProductEndpoint.objects.create(
        url=fake.endpoint_url, description="the product", secret=secret
    )
    yield Product(fake, endpoint, secret)
    fake.stop()


class Buyer:
    """One Stripe customer on a subscription, with a clock for event times."""

    def __init__(self, webhook, *, email: str = "pat@example.test", start: int | None = None):
        self.webhook = webhook
        self.cus = events.customer(email=email, name="Pat Lee")
        self.sub_id = events.new_id("sub")
        self.clock = start if start is not None else int(time.time()) - 3600
        self.sent: list[dict] = []

    def send(self, event_type: str, obj: dict, *, at: int | None = None) -> dict:
        self.clock += 10
        event = events.event(event_type, obj, created=at or self.clock)
        assert self.webhook.post(event).status_code == 200
        self.sent.append(event)
        return event

    def sub(self, status: str, plan_id: str = "plan_pro", nickname: str = "Pro") -> dict:
        return events.subscription(
            self.cus["id"],
            status=status,
            sub_id=self.sub_id,
            plan_id=plan_id,
            amount=2000,
            nickname=nickname,
        )

    def checkout_paid(self) -> None:
        """Checkout in subscription mode: the customer, the session, the subscription and
        its first invoice paid (Stripe sends them in no particular order)."""
        session = events.example("checkout.session")
        session.update(
            id=events.new_id("cs"),
            mode="subscription",
            status="complete",
            payment_status="paid",
            customer=self.cus["id"],
            subscription=self.sub_id,
            customer_email=self.cus["email"],
        )
        self.send("customer.created", self.cus)
        self.send("checkout.session.completed", session)
        self.send("customer.subscription.created", self.sub("active"))
        self.paid()

    def paid(self, *, at: int | None = None) -> dict:
        return self.send(
            "invoice.paid",
            events.invoice(
                self.cus["id"], subscription_id=self.sub_id, billing_reason="subscription_create"
            ),
            at=at,
        )

    def failed(self, attempt: int, *, invoice: dict | None = None, at: int | None = None) -> dict:
        invoice = invoice or events.invoice(
            self.cus["id"], subscription_id=self.sub_id, status="open"
        )
        self.send("invoice.payment_failed", {**invoice, "attempt_count": attempt}, at=at)
        return invoice

    def replay_all(self) -> None:
        for event in list(self.sent):
            assert self.webhook.post(event).status_code == 200

    def customer(self) -> Customer:
        return Customer.objects.get(stripe_customer_id=self.cus["id"])
