"""Content-Security-Policy: every response carries a policy without 'unsafe-inline', and
the console's pages hold no inline script or style a browser would refuse.

The server-side checks run in the default suite; the browser test (marked ``browser``)
opens every console page as an owner in Chromium and records every CSP violation the
browser reports (zero allowed)."""

from __future__ import annotations

import re

import pytest
import stripe
from django.urls import reverse

from tests.console_support import outbox, stripe_event, ticket
from tests.factories import CustomerFactory
from tests.finance_support import confirm, plan, subscriber
from tests.test_finance_browser import _login, browser  # noqa: F401 - the fixture

# A JSON data block (json_script: django-otp-webauthn's configuration) is not code: the
# browser never runs it, and CSP does not apply to it.
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", re.I)
_STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)
_INLINE_STYLE = re.compile(r"<style(?![^>]*\bnonce=)[^>]*>", re.I)
_HANDLER_ATTR = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I)


def console_pages(customer) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("console_dashboard") + "?window=24h",
        reverse("console_dashboard") + "?window=7d",
        reverse("console_customer", args=[customer.pk]),
        reverse("console_search") + "?q=nobody-matches-this",
        reverse("admin:customers_customer_changelist"),
        reverse("admin:customers_customer_change", args=[customer.pk]),
        reverse("admin:billing_refundrequest_changelist")
        if _has("admin:billing_refundrequest_changelist")
        else reverse("admin:index"),
        reverse("admin:billing_stripeevent_changelist"),
        reverse("admin:delivery_outboxmessage_changelist"),
        reverse("admin:support_ticket_changelist"),
        reverse("admin:audit_auditentry_changelist"),
        reverse("admin:console_alert_changelist"),
        # the second factor's pages: one's own, adding an authenticator (QR code as inline
        # SVG), and the code step asked again before a change
        reverse("two_factor:manage"),
        reverse("two_factor:enrol"),
        reverse("two_factor:verify") + "?again=1",
    ]


def _has(name: str) -> bool:
    from django.urls import NoReverseMatch

    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True


@pytest.mark.django_db
def test_every_console_page_has_a_strict_policy_and_no_inline_code(client, owner):
    customer = CustomerFactory(email="csp@example.test", stripe_customer_id="cus_csp1")
    event = stripe_event(customer=customer, payload={"id": "evt_csp", "type": "invoice.paid"})
    outbox(customer=customer)
    ticket(customer=customer)
    client.force_login(owner)
    pages = [*console_pages(customer), reverse("admin:billing_stripeevent_change", args=[event.pk])]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "script-src 'self'" in policy, url
        html = response.content.decode()
        assert not _INLINE_SCRIPT.findall(html), url
        assert not _STYLE_ATTR.findall(html), url
        assert not _INLINE_STYLE.findall(html), url
        assert not _HANDLER_ATTR.findall(html), url


@pytest.mark.django_db
def test_the_charts_inline_style_carries_the_requests_nonce(client, owner):
    client.force_login(owner)
    response = client.get(reverse("console_dashboard"))
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    html = response.content.decode()
    assert f'<style nonce="{nonce}"' in html
    assert "<svg" in html


@pytest.mark.django_db
def test_error_pages_and_login_carry_the_policy(client):
    response = client.get(reverse("admin:login"))
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert not _INLINE_SCRIPT.findall(response.content.decode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.browser
def test_no_csp_violation_on_any_console_page(
    browser,  # noqa: F811
    live_server,
    stripe_api,
    webhook,
    owner,
):
    customer, sub, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    confirm(webhook, "invoice.paid", stripe.Invoice.retrieve(sub.latest_invoice))
    customer.refresh_from_db()
    page = _login(browser, live_server, owner.username)
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    violations = {}
    for url in console_pages(customer):
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        found = page.evaluate("window.__csp")
        if found:
            violations[url] = found
    assert violations == {}
