"""In a real browser (Debian's headless Chromium, driven by Playwright): a finance admin
logs in, refunds part of a payment through the confirmation page and watches the waiting
page turn to confirmed when Stripe's charge.refunded is processed; a support agent sees
no Refund button, only "Request a refund"."""

from __future__ import annotations

import os

import pytest
import stripe

from tests.factories import PASSWORD
from tests.finance_support import confirm, plan, subscriber
from tests.two_factor_support import next_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser(monkeypatch, live_server):
    # Depends on live_server so the browser (and its self-refreshing page) closes first.
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_browser.sh (make test does)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
            # ORM calls made while Playwright's loop ran got their own connection (Django
            # keeps connections per async context); close it, or the test database cannot
            # be dropped at the end of the session.
            from django.db import connections

            connections.close_all()


def _login(browser, live_server, username, page=None):
    """Through the real form: the password, then, for a user with an authenticator, the
    code it shows now (computed from the device's key, as the phone would)."""
    page = page or browser.new_context().new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools, #two-factor-verify")
    if page.locator("#two-factor-verify").count():
        _enter_code(page, username)
    page.wait_for_selector("#user-tools")
    return page


def _enter_code(page, username):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
    page.fill("#id_code", next_code(device))
    page.click("#two-factor-verify input[type=submit]")


def test_finance_admin_refunds_through_the_confirmation_page(
    browser, live_server, stripe_api, webhook, finance_admin, support_agent, tmp_path
):
    from playwright.sync_api import expect

    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    customer_page = f"{live_server.url}/admin/console/customers/{customer.pk}/"

    page = _login(browser, live_server, finance_admin.username)
    page.goto(customer_page)
    page.screenshot(path=str(tmp_path / "customer.png"), full_page=True)
    page.click("a.finance-refund")
    page.fill("#id_amount", "12.50")
    page.select_option("#id_reason_code", "service_issue")
    page.fill("#id_note", "two days of outage")
    page.click("input[value=Review]")
    expect(page.locator("#will-happen")).to_contain_text("Refund 12.50 USD of payment")
    expect(page.locator("#will-happen")).to_contain_text("Still refundable afterwards: 37.50 USD")
    page.screenshot(path=str(tmp_path / "preview.png"))
    page.click("input[name=confirm]")
    expect(page.locator("#action-state")).to_have_text(
        "Submitted to Stripe — waiting for confirmation"
    )
    assert [r.amount for r in stripe.Refund.list(charge=charge_id).data] == [1250]

    confirm(webhook, "charge.refunded", stripe.Charge.retrieve(charge_id))
    # The page refreshes itself every 2 s until Stripe's confirmation is recorded.
    expect(page.locator("#action-state")).to_have_text("Confirmed by Stripe", timeout=10_000)
    page.screenshot(path=str(tmp_path / "confirmed.png"))

    agent = _login(browser, live_server, support_agent.username)
    agent.goto(customer_page)
    expect(agent.locator("#finance-charges")).to_be_visible()
    expect(agent.locator("a.finance-refund")).to_have_count(0)
    expect(agent.locator("a.finance-request-refund")).to_have_count(1)
