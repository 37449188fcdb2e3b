"""The console in a real browser (Debian's headless Chromium, driven by Playwright): a
support agent finds a customer by a charge id and reads the three answers; a disputed
customer is offered no Refund; the dashboard's chart draws one busy bucket; the customer
page fits a 390 px phone without horizontal scrolling."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from devkit import stripe_events as events
from tests.console_support import stripe_event
from tests.finance_support import confirm, plan, subscriber
from tests.stripe_support.fixtures import drain
from tests.stripe_support.objects import snap
from tests.test_finance_browser import _login, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


def _paid(webhook):
    """A Pro subscriber whose invoice and charge events reached the console."""
    customer, sub, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    confirm(webhook, "invoice.paid", stripe.Invoice.retrieve(sub.latest_invoice))
    confirm(webhook, "charge.succeeded", stripe.Charge.retrieve(charge_id))
    customer.refresh_from_db()
    return customer, sub, charge_id


def test_support_agent_finds_a_customer_by_charge_id_and_reads_the_header(
    browser,  # noqa: F811
    live_server,
    stripe_api,
    webhook,
    support_agent,
):
    from playwright.sync_api import expect

    customer, _, charge_id = _paid(webhook)
    page = _login(browser, live_server, support_agent.username)
    page.fill("#sb-q", charge_id)
    page.click(".sb-search button[type=submit]")
    expect(page.locator("#customer-name")).to_have_text(customer.display_name)
    expect(page.locator("#answer-paying")).to_contain_text("Pro — 50.00 USD/month, active")
    expect(page.locator("#answer-paying")).to_contain_text("Renews on")
    expect(page.locator("#answer-charged")).to_contain_text("50.00 USD")
    expect(page.locator("#answer-charged")).to_contain_text("Succeeded")
    expect(page.locator("#last-happened")).to_contain_text("50.00 USD")
    expect(page.locator("#open-tickets")).to_be_visible()
    expect(page.locator("#status-badge")).to_have_text("Active")


def test_a_disputed_customer_is_offered_no_refund(
    browser,  # noqa: F811
    live_server,
    stripe_api,
    webhook,
    finance_admin,
):
    from playwright.sync_api import expect

    customer, _, charge_id = _paid(webhook)
    charge = snap(stripe.Charge.retrieve(charge_id))
    later = int(time.time()) + 5  # after the payment's events, as Stripe would send it
    dispute = events.event("charge.dispute.created", events.dispute(charge), created=later)
    assert webhook.post(dispute).status_code == 200
    drain()
    page = _login(browser, live_server, finance_admin.username)
    page.goto(f"{live_server.url}/admin/console/customers/{customer.pk}/")
    expect(page.locator("#status-badge")).to_have_text("Disputed")
    expect(page.locator("#finance-charges")).to_be_visible()  # the live panel has loaded
    expect(page.locator("#finance-charges")).to_contain_text("disputed")
    expect(page.locator("a.finance-refund")).to_have_count(0)
    expect(page.locator("#live-differences")).to_contain_text("disputed")


def test_the_dashboard_chart_draws_a_single_busy_bucket(
    browser,  # noqa: F811
    live_server,
    owner,
):
    stripe_event(received_at=timezone.now() - timedelta(minutes=2))
    page = _login(browser, live_server, owner.username)
    page.goto(f"{live_server.url}/admin/console/?window=24h")
    bars = page.eval_on_selector_all(
        ".console-chart svg rect.rect",
        "rs => rs.map(r => r.getBoundingClientRect()).filter(b => b.height > 1 && b.width > 1).length",
    )
    assert bars == 1


def test_the_customer_page_fits_a_390px_phone(
    browser,  # noqa: F811
    live_server,
    stripe_api,
    webhook,
    finance_admin,
    tmp_path,
):
    """As a finance admin: the page with the most on it (the finance buttons)."""
    from playwright.sync_api import expect

    user = finance_admin
    customer, _, _ = _paid(webhook)
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = _login(browser, live_server, user.username, page=context.new_page())
    page.goto(f"{live_server.url}/admin/console/customers/{customer.pk}/")
    expect(page.locator("#finance-charges")).to_be_visible()
    page.screenshot(path=str(tmp_path / "customer-390.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
