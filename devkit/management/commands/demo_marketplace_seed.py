"""manage.py demo_marketplace_seed [--base-url URL] [--process]

Seeds a marketplace into the demo (after ``demo_stripe_seed``, same safety checks: only
localstripe, never production or a live key): one seller, a customer linked to the
connected account ``acct_1DemoSellerShop01``, and two orders a buyer paid to it as
destination charges with a 10 % application fee, one of them then partly refunded with
the transfer reversed and the fee refunded. localstripe sends no Checkout, charge or
refund events: they are built from Stripe's example shapes around the real objects and
signed (``devkit.stripe_events``). Delivery as ``demo_stripe_seed`` (in-process, or over
HTTP with ``--base-url``). Running it twice seeds nothing twice.
"""

from __future__ import annotations

import time
from typing import Any

import stripe
from django.conf import settings
from django.core.management.base import CommandParser

from devkit import stripe_events as events
from devkit.management.commands.demo_stripe_seed import CARD
from devkit.management.commands.demo_stripe_seed import Command as StripeSeed
from devkit.signing import signed

SELLER_ACCOUNT = "acct_1DemoSellerShop01"
SELLER_EMAIL = "orders@demo-seller-shop.test"
BUYER_EMAIL = "marketplace.buyer@demo.switchboard.test"


class Command(StripeSeed):
    help = "Seed a seller and two marketplace orders into localstripe and the console."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="", help="Deliver over HTTP to this console.")
        parser.add_argument("--process", action="store_true", help="Run a burst worker after.")

    def handle(self, *args: Any, **options: Any) -> None:
        from customers.models import Customer
        from customers.services import customer_create

        self._check_target()
        if Customer.objects.filter(stripe_account_id=SELLER_ACCOUNT).exists():
            self.stdout.write("The demo marketplace is already seeded; nothing to do.")
            return
        _, deliver = self._delivery(options["base_url"].rstrip("/"))
        customer_create(
            actor=None,
            email=SELLER_EMAIL,
            name="Demo Seller Shop",
            stripe_account_id=SELLER_ACCOUNT,
            marketplace_role="seller",
        )
        pm = stripe.PaymentMethod.create(type="card", card=dict(CARD))
        buyer = stripe.Customer.create(
            email=BUYER_EMAIL, name="Mia Marketplace", payment_method=pm.id
        )
        t = int(time.time())
        built = [events.event("customer.created", buyer.to_dict(for_json=True), created=t)]
        for n, (amount, refund) in enumerate(((4900, 0), (12000, 3000))):
            pi = stripe.PaymentIntent.create(
                amount=amount,
                currency="usd",
                customer=buyer.id,
                payment_method=pm.id,
                confirm=True,
                transfer_data={"destination": SELLER_ACCOUNT},
                application_fee_amount=amount // 10,
            )
            charge_id = (
                pi.latest_charge if isinstance(pi.latest_charge, str) else pi.latest_charge.id
            )
            session = events.checkout_session(
                payment_intent=pi.id, amount=amount, customer_id=buyer.id, email=BUYER_EMAIL
            )
            built += [
                events.event("checkout.session.completed", session, created=t + 1 + n),
                events.event(
                    "charge.succeeded",
                    stripe.Charge.retrieve(charge_id).to_dict(for_json=True),
                    created=t + 1 + n,
                ),
            ]
            if refund:
                made = stripe.Refund.create(
                    charge=charge_id,
                    amount=refund,
                    reverse_transfer=True,
                    refund_application_fee=True,
                )
                built += [
                    events.event("refund.created", made.to_dict(for_json=True), created=t + 5),
                    events.event(
                        "charge.refunded",
                        stripe.Charge.retrieve(charge_id).to_dict(for_json=True),
                        created=t + 5,
                    ),
                ]
        answers = [deliver(*signed(event, settings.STRIPE_WEBHOOK_SECRET)) for event in built]
        if options["process"]:
            self._process()
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded the demo marketplace: seller {SELLER_ACCOUNT}, 2 orders "
                f"({len(built)} events, answers {sorted(set(answers))})."
            )
        )
