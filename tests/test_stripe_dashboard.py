"""Links to Stripe's dashboard: one address, the object's mode, the object's page."""

from __future__ import annotations

import pytest

from config.stripe_dashboard import stripe_dashboard_url
from support.content import ticket_body
from tests.factories import CustomerFactory


def test_links_follow_the_id_prefix_and_the_mode(settings):
    settings.STRIPE_DASHBOARD_URL = "https://dashboard.stripe.com"
    settings.STRIPE_LIVE_MODE = False
    assert stripe_dashboard_url("cus_1") == "https://dashboard.stripe.com/test/customers/cus_1"
    assert (
        stripe_dashboard_url("in_1", livemode=True) == "https://dashboard.stripe.com/invoices/in_1"
    )
    assert stripe_dashboard_url("pi_1").endswith("/test/payments/pi_1")
    assert stripe_dashboard_url("evt_1").endswith("/test/events/evt_1")
    assert stripe_dashboard_url("price_1") is None
    assert stripe_dashboard_url("") is None
    settings.STRIPE_LIVE_MODE = True
    assert stripe_dashboard_url("sub_1") == "https://dashboard.stripe.com/subscriptions/sub_1"


@pytest.mark.django_db
def test_tickets_link_to_the_configured_dashboard(settings):
    settings.STRIPE_DASHBOARD_URL = "https://stripe.example/"
    settings.STRIPE_LIVE_MODE = False
    customer = CustomerFactory(stripe_customer_id="cus_T1")
    body = ticket_body(customer, obj={"id": "in_T1", "amount_due": 5000, "currency": "jpy"})
    assert "- cus_T1: https://stripe.example/test/customers/cus_T1" in body
    assert "- in_T1: https://stripe.example/test/invoices/in_T1" in body
    assert "Amount: 5,000 JPY" in body
