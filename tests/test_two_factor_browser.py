"""In Chromium: an owner's first login enrols an authenticator from scratch (the secret
read off the page as a phone would scan it, the code typed), the recovery codes are
shown, the console opens; signed out and in again, the code step takes a TOTP code.
No page of the flow breaks the Content-Security-Policy."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import codes
from audit.models import AuditEntry
from tests.factories import PASSWORD, StaffUserFactory
from tests.test_finance_browser import _login, browser  # noqa: F401 - the fixture
from tests.two_factor_support import code_from_secret

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

CSP_RECORDER = (
    "window.__csp = window.__csp || [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def test_first_login_enrols_then_the_next_login_takes_a_totp_code(
    browser,  # noqa: F811
    live_server,
    tmp_path,
):
    owner = StaffUserFactory(username="first@example.test", role="owner", two_factor=False)
    context = browser.new_context()
    context.add_init_script(CSP_RECORDER)
    page = context.new_page()
    page.set_default_timeout(10_000)
    violations: dict[str, list[str]] = {}

    def check_csp() -> None:
        found = page.evaluate("window.__csp")
        if found:
            violations[page.url] = found

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", owner.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    # First login: straight to enrolment, whatever page was asked for.
    page.wait_for_selector("#two-factor-enrol")
    assert "/admin/2fa/enrol/" in page.url
    assert page.locator(".two-factor-qr svg").count() == 1
    page.screenshot(path=str(tmp_path / "enrol.png"), full_page=True)
    check_csp()
    page.goto(f"{live_server.url}/admin/console/")
    page.wait_for_selector("#two-factor-enrol")  # the console stays shut
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    page.fill("#id_code", code_from_secret(secret))
    page.fill("#id_name", "Test phone")
    page.click("#two-factor-enrol input[type=submit]")

    page.wait_for_selector("#recovery-codes")
    assert page.locator("#recovery-codes li").count() == 10
    page.screenshot(path=str(tmp_path / "recovery-codes.png"), full_page=True)
    check_csp()
    page.click("#two-factor-continue")
    page.wait_for_selector("#user-tools")
    assert "/admin/console/" in page.url
    page.goto(f"{live_server.url}/admin/2fa/")
    page.wait_for_selector("#two-factor-devices")
    assert "Test phone" in page.locator("#two-factor-devices").inner_text()
    page.screenshot(path=str(tmp_path / "two-factors.png"), full_page=True)
    check_csp()

    # Sign out; the next login asks for the code the app shows now.
    page.click("#logout-form button")
    page.wait_for_selector("#content")
    fresh = context.new_page()
    fresh.set_default_timeout(10_000)
    _login(browser, live_server, owner.username, page=fresh)
    assert "/admin/" in fresh.url
    page = fresh
    check_csp()

    assert violations == {}
    device = TOTPDevice.objects.get(user=owner, confirmed=True)
    assert device.name == "Test phone"
    assert AuditEntry.objects.filter(action=codes.STAFF_2FA_ENROLLED, actor=owner).count() == 1


def test_a_passkey_added_on_the_two_factors_page_stands_in_for_the_code(
    browser,  # noqa: F811
    live_server,
    owner,
):
    """Chromium's virtual authenticator (DevTools' WebAuthn domain) plays the passkey."""
    from django_otp_webauthn.models import WebAuthnCredential

    context = browser.new_context()
    context.add_init_script(CSP_RECORDER)
    page = _login(browser, live_server, owner.username, page=context.new_page())
    devtools = context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.goto(f"{live_server.url}/admin/2fa/")
    page.click("#passkey-register-button")
    page.wait_for_selector("#two-factor-passkeys")  # the page shows it once registered
    assert page.evaluate("window.__csp") == []
    assert WebAuthnCredential.objects.filter(user=owner, confirmed=True).count() == 1
    enrolled = AuditEntry.objects.get(action=codes.STAFF_2FA_ENROLLED, actor=owner)
    assert enrolled.data["method"] == "passkey"

    # Signed out and in again: the passkey instead of a code.
    page.click("#logout-form button")
    page.wait_for_selector("#content")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/console/")
    page.fill("#id_username", owner.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#passkey-verification-button")
    page.click("#passkey-verification-button")
    page.wait_for_selector("#user-tools")
    assert "/admin/console/" in page.url
    assert page.evaluate("window.__csp") == []
