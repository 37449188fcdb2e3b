"""Two factors for staff: enrolment at first login, the code step, recovery codes, an
owner's reset, and the gate in front of every staff URL (customers/two_factor.py)."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from audit import codes
from audit.models import AuditEntry
from customers.models import RecoveryCode, RecoveryCodeDevice
from customers.two_factor import recovery_codes_generate
from tests.factories import PASSWORD, CustomerFactory, StaffUserFactory
from tests.two_factor_support import code_from_secret, next_code, totp_device

pytestmark = pytest.mark.django_db

VERIFY = reverse("two_factor:verify")
ENROL = reverse("two_factor:enrol")


def password_login(client: Client, user) -> None:
    """The first step only, through the real login form (axes and all)."""
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 302, response.content[:500]


def staff_urls(customer) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("console_dashboard"),
        reverse("console_customer", args=[customer.pk]),
        reverse("console_search") + "?q=x",
        reverse("admin:customers_customer_changelist"),
        reverse("admin:audit_auditentry_changelist"),
        reverse("admin:auth_user_changelist"),
        reverse("billing:refund_requests"),
        reverse("billing:refund", args=[customer.pk]),
        reverse("billing:customer_finance_panel", args=[customer.pk]),
        "/admin/django_rq/dashboard/",
        reverse("two_factor:manage"),
    ]


def audit(action: str):
    return AuditEntry.objects.filter(action=action)


def test_owner_without_a_device_is_sent_to_enrolment_from_every_staff_url(client):
    owner = StaffUserFactory(username="new-owner@example.test", role="owner", two_factor=False)
    customer = CustomerFactory()
    password_login(client, owner)
    for url in staff_urls(customer):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(ENROL + "?next="), (url, response["Location"])
    # A finance action posted straight at its URL does nothing either.
    response = client.post(
        reverse("billing:refund", args=[customer.pk]), {"amount": "1.00", "note": "x"}
    )
    assert response.status_code == 302 and response["Location"].startswith(ENROL)
    assert not audit(codes.BILLING_REFUND_REQUESTED).exists()
    assert not audit(codes.BILLING_REFUND_ISSUED).exists()


def test_enrolment_from_scratch_then_recovery_codes_shown_once_and_audited(client):
    owner = StaffUserFactory(username="new-owner@example.test", role="owner", two_factor=False)
    password_login(client, owner)
    page = client.get(ENROL + "?next=/admin/console/")
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("no-store") or "no-store" in page["Cache-Control"]
    html = page.content.decode()
    secret = re.search(r'data-secret="([A-Z2-7]+)"', html).group(1)
    assert "<svg" in html and "otpauth://" not in html.split("<svg", 1)[0][-200:]
    # A reload shows the same secret: the app the person already scanned keeps working.
    again = client.get(ENROL).content.decode()
    assert f'data-secret="{secret}"' in again

    wrong = client.post(ENROL, {"code": "000000", "name": "Phone", "next": "/admin/console/"})
    assert wrong.status_code == 400
    assert not TOTPDevice.objects.filter(user=owner, confirmed=True).exists()
    TOTPDevice.objects.filter(user=owner).update(throttling_failure_count=0)

    done = client.post(
        ENROL, {"code": code_from_secret(secret), "name": "Work phone", "next": "/admin/console/"}
    )
    assert done.status_code == 200
    shown = re.findall(
        r"<code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>", done.content.decode()
    )
    assert len(shown) == 10 and len(set(shown)) == 10
    assert "no-store" in done["Cache-Control"]
    device = TOTPDevice.objects.get(user=owner, confirmed=True)
    assert device.name == "Work phone"
    # Stored as hashes only.
    stored = set(
        RecoveryCode.objects.filter(device__user=owner).values_list("code_hash", flat=True)
    )
    assert len(stored) == 10 and not stored & {c.replace("-", "") for c in shown}

    # Verified now: the console opens.
    assert client.get("/admin/console/").status_code == 200
    enrolled = audit(codes.STAFF_2FA_ENROLLED).get()
    generated = audit(codes.STAFF_2FA_RECOVERY_CODES_GENERATED).get()
    assert enrolled.actor == owner and generated.data["count"] == 10
    failed = audit(codes.STAFF_2FA_FAILED).get()
    assert failed.data["method"] == "enrolment"
    everything = str(list(AuditEntry.objects.values_list("data", flat=True)))
    assert secret not in everything and device.key not in everything
    assert not any(code in everything or code.replace("-", "") in everything for code in shown)


def test_a_wrong_code_is_refused_throttled_and_audited(client, owner):
    device = totp_device(owner)
    password_login(client, owner)
    assert client.get("/admin/").headers["Location"].startswith(VERIFY)
    right = next_code(device)
    wrong = "123456" if right != "123456" else "654321"
    response = client.post(VERIFY, {"code": wrong, "next": "/admin/"})
    assert response.status_code == 400
    assert b"That code is not right" in response.content
    assert client.get("/admin/").status_code == 302
    entry = audit(codes.STAFF_2FA_FAILED).get()
    assert entry.actor == owner and entry.data["method"] == "totp"
    assert wrong not in str(entry.data)
    # Straight after a wrong code even the right one waits (django-otp's throttle).
    throttled = client.post(VERIFY, {"code": right, "next": "/admin/"})
    assert throttled.status_code == 400 and b"Too many wrong codes" in throttled.content
    assert audit(codes.STAFF_2FA_FAILED).count() == 2
    assert audit(codes.STAFF_2FA_FAILED).order_by("pk").last().data["throttled"] is True
    assert client.get("/admin/").status_code == 302


def test_a_correct_totp_code_verifies_and_cannot_be_used_twice(finance_admin):
    device = totp_device(finance_admin)
    first = Client()
    password_login(first, finance_admin)
    code = next_code(device)
    response = first.post(VERIFY, {"code": code, "next": "/admin/console/"})
    assert response.status_code == 302 and response["Location"] == "/admin/console/"
    assert first.get("/admin/console/").status_code == 200
    assert first.get(reverse("billing:refund_requests")).status_code == 200

    # Someone who saw that code cannot reuse it in another session.
    second = Client()
    password_login(second, finance_admin)
    replay = second.post(VERIFY, {"code": code, "next": "/admin/"})
    assert replay.status_code == 400
    assert second.get("/admin/").status_code == 302


def test_the_next_parameter_never_leaves_the_site(client, owner):
    device = totp_device(owner)
    password_login(client, owner)
    response = client.post(VERIFY, {"code": next_code(device), "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_a_recovery_code_works_once_only(owner):
    recovery = recovery_codes_generate(actor=owner)
    first = Client()
    password_login(first, owner)
    response = first.post(
        VERIFY, {"code": recovery[0].upper().replace("-", " "), "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert first.get("/admin/").status_code == 200
    used = audit(codes.STAFF_2FA_RECOVERY_CODE_USED).get()
    assert used.data == {"left": 9}

    second = Client()
    password_login(second, owner)
    again = second.post(VERIFY, {"code": recovery[0], "next": "/admin/"})
    assert again.status_code == 400
    assert second.get("/admin/").status_code == 302
    assert audit(codes.STAFF_2FA_FAILED).get().data["method"] == "recovery_code"
    assert RecoveryCode.objects.filter(device__user=owner).count() == 9


def test_new_recovery_codes_replace_the_old_ones_after_a_recent_code(client, owner):
    old = recovery_codes_generate(actor=owner)
    client.force_login(owner)
    response = client.post(reverse("two_factor:recovery_codes"))
    assert response.status_code == 200
    new = re.findall(r"<code>([a-z2-7-]{19})</code>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert audit(codes.STAFF_2FA_RECOVERY_CODES_GENERATED).count() == 2

    other = Client()
    password_login(other, owner)
    assert other.post(VERIFY, {"code": old[1], "next": "/admin/"}).status_code == 400
    RecoveryCodeDevice.objects.update(throttling_failure_count=0)  # past the 1 s wait
    assert other.post(VERIFY, {"code": new[1], "next": "/admin/"}).status_code == 302


def test_changes_to_ones_second_factor_need_a_recent_code(client, owner):
    client.force_login(owner)
    session = client.session
    session["two_factor_verified_at"] = 1.0  # long ago
    session.save()
    response = client.post(reverse("two_factor:recovery_codes"))
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert "again=1" in response["Location"]
    assert not audit(codes.STAFF_2FA_RECOVERY_CODES_GENERATED).exists()
    response = client.get(ENROL)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)


def test_removing_devices_keeps_the_last_one_a_role_needs(client, owner):
    first = totp_device(owner)
    second = TOTPDevice.objects.create(user=owner, name="Spare", confirmed=True)
    client.force_login(owner)
    confirm = client.get(reverse("two_factor:device_remove", args=[second.pk]))
    assert confirm.status_code == 200 and b"Yes, remove it" in confirm.content
    assert TOTPDevice.objects.filter(pk=second.pk).exists()  # GET only asks
    client.post(reverse("two_factor:device_remove", args=[second.pk]))
    assert not TOTPDevice.objects.filter(pk=second.pk).exists()
    removed = audit(codes.STAFF_2FA_DEVICE_REMOVED).get()
    assert removed.data["devices_left"] == 1
    client.post(reverse("two_factor:device_remove", args=[first.pk]))
    assert TOTPDevice.objects.filter(pk=first.pk).exists()
    assert audit(codes.STAFF_2FA_DEVICE_REMOVED).count() == 1
    # Someone else's device is not found, whoever asks.
    other = totp_device(StaffUserFactory(role="finance_admin"))
    assert client.post(reverse("two_factor:device_remove", args=[other.pk])).status_code == 404
    assert TOTPDevice.objects.filter(pk=other.pk).exists()


def test_an_owner_resets_a_finance_admins_second_factor_and_they_enrol_again(
    owner, finance_admin, support_agent
):
    totp_device(finance_admin)
    recovery_codes_generate(actor=finance_admin)
    theirs = Client()
    theirs.force_login(finance_admin)
    assert theirs.get("/admin/").status_code == 200

    url = reverse("two_factor:reset", args=[finance_admin.pk])
    agent = Client()
    agent.force_login(support_agent)
    assert agent.get(url).status_code == 403
    assert agent.post(url, {"reason": "x"}).status_code == 403

    ours = Client()
    ours.force_login(owner)
    user_page = ours.get(reverse("admin:auth_user_change", args=[finance_admin.pk]))
    assert url.encode() in user_page.content
    page = ours.get(url)
    assert page.status_code == 200 and b"Reset their second factor" in page.content
    assert ours.post(url, {"reason": "  "}).status_code == 400
    assert TOTPDevice.objects.filter(user=finance_admin).exists()
    done = ours.post(url, {"reason": "lost phone, confirmed by a call"})
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=finance_admin).exists()
    assert not RecoveryCode.objects.filter(device__user=finance_admin).exists()
    entry = audit(codes.STAFF_2FA_RESET).get()
    assert entry.actor == owner and entry.target_id == str(finance_admin.pk)
    assert entry.data == {
        "reason": "lost phone, confirmed by a call",
        "devices_removed": 1,
        "recovery_codes_removed": 10,
    }
    # Their open session now owes a second factor again: to enrolment, not the console.
    response = theirs.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(ENROL)
    # An owner cannot reset their own this way.
    assert (
        ours.post(reverse("two_factor:reset", args=[owner.pk]), {"reason": "x"}).status_code == 400
    )


def test_the_reset_command_for_a_lone_owner(owner):
    totp_device(owner)
    call_command("two_factor_reset", owner.username, reason="only owner lost phone")
    assert not TOTPDevice.objects.filter(user=owner).exists()
    entry = audit(codes.STAFF_2FA_RESET).get()
    assert entry.actor is None and entry.data["reason"] == "only owner lost phone"


def test_a_support_agent_is_not_forced_but_verifies_once_enrolled(client, support_agent):
    password_login(client, support_agent)
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("two_factor:manage")).status_code == 200
    device = totp_device(support_agent)
    other = Client()
    password_login(other, support_agent)
    response = other.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert other.post(VERIFY, {"code": next_code(device), "next": "/admin/"}).status_code == 302
    assert other.get("/admin/").status_code == 200


@override_settings(TWO_FACTOR_REQUIRED_ROLES=[])
def test_the_setting_off_removes_the_requirement(client):
    owner = StaffUserFactory(username="new-owner@example.test", role="owner", two_factor=False)
    with override_settings(TWO_FACTOR_REQUIRED_ROLES=["owner", "finance_admin"]):
        password_login(client, owner)  # the default: this owner would be sent to enrol
        assert client.get("/admin/")["Location"].startswith(ENROL)
    client.logout()
    password_login(client, owner)
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("billing:refund_requests")).status_code == 200


@override_settings(TWO_FACTOR_REQUIRED_ROLES=["owner", "finance_admin", "support_agent"])
def test_the_setting_can_require_support_agents_too(client):
    agent = StaffUserFactory(username="agent@example.test", role="support_agent", two_factor=False)
    password_login(client, agent)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(ENROL)


def test_a_superuser_must_enrol_too(client):
    root = StaffUserFactory(username="root@example.test", is_superuser=True, two_factor=False)
    password_login(client, root)
    assert client.get("/admin/").headers["Location"].startswith(ENROL)


def test_sign_out_health_and_the_api_are_not_gated(client):
    owner = StaffUserFactory(username="new-owner@example.test", role="owner", two_factor=False)
    password_login(client, owner)
    assert client.get("/admin/")["Location"].startswith(ENROL)  # the gate is on for them
    assert client.get("/healthz").status_code == 200
    assert client.get(reverse("api_openapi")).status_code == 200
    assert client.get(ENROL).status_code == 200
    assert client.post(reverse("admin:logout")).status_code == 200  # "Logged out"
    assert "_auth_user_id" not in client.session


def test_an_enrolled_user_cannot_add_a_device_with_the_password_alone(client, owner):
    totp_device(owner)
    password_login(client, owner)
    response = client.get(ENROL)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=owner).count() == 1


def test_create_staff_user_says_the_role_needs_a_second_factor(capsys):
    call_command(
        "create_staff_user", "fin@example.test", "--role", "finance_admin", "--generate-password"
    )
    assert "set up an authenticator app" in capsys.readouterr().out


def test_the_demo_prints_a_key_for_the_roles_that_need_one_and_it_signs_in(capsys):
    call_command("demo_setup")
    output = capsys.readouterr().out
    logins = dict(
        (role, (username, password))
        for role, username, password in re.findall(r"^\s+(\w+)\s+(\S+@\S+)\s+(\S+)$", output, re.M)
    )
    keys = dict(re.findall(r"^\s+(\w+)\s+(otpauth://totp/\S+)$", output, re.M))
    assert set(keys) == {"owner", "finance_admin"}
    username, password = logins["owner"]
    secret = re.search(r"secret=([A-Z2-7]+)", keys["owner"]).group(1)
    client = Client()
    client.post("/admin/login/", {"username": username, "password": password})
    response = client.post(VERIFY, {"code": code_from_secret(secret), "next": "/admin/"})
    assert response.status_code == 302 and client.get("/admin/").status_code == 200
    # The support agent has none and needs none.
    agent = Client()
    agent.post(
        "/admin/login/",
        {"username": logins["support_agent"][0], "password": logins["support_agent"][1]},
    )
    assert agent.get("/admin/").status_code == 200
    # demo_totp_code prints the code the finance admin's authenticator shows now.
    call_command("demo_totp_code", logins["finance_admin"][0])
    code = capsys.readouterr().out.strip()
    fin = Client()
    fin.post(
        "/admin/login/",
        {"username": logins["finance_admin"][0], "password": logins["finance_admin"][1]},
    )
    assert fin.post(VERIFY, {"code": code, "next": "/admin/"}).status_code == 302


# --- passkeys (django-otp-webauthn) ---------------------------------------------------------
BEGIN_REGISTRATION = "/admin/2fa/passkeys/registration/begin/"
BEGIN_AUTHENTICATION = "/admin/2fa/passkeys/authentication/begin/"


def test_adding_a_passkey_needs_an_authenticator_and_a_recent_code(client, owner, support_agent):
    client.force_login(owner)
    session = client.session
    session["two_factor_verified_at"] = 1.0  # long ago
    session.save()
    stale = client.post(BEGIN_REGISTRATION)
    assert stale.status_code == 403 and stale.json()["code"] == "code_first"
    client.force_login(owner)  # a code just now
    fresh = client.post(BEGIN_REGISTRATION)
    assert fresh.status_code == 200
    options = fresh.json()
    assert options["rp"]["id"] == "testserver" and options["rp"]["name"] == "Switchboard"
    assert options["challenge"]
    # A support agent without an authenticator app adds one first.
    agent = Client()
    agent.force_login(support_agent)
    assert agent.post(BEGIN_REGISTRATION).json()["code"] == "code_first"


def test_a_passkey_is_a_second_factor_only(client, owner):
    # No passwordless login: without the password step the ceremony does not start.
    anonymous = client.post(BEGIN_AUTHENTICATION)
    assert anonymous.status_code == 403
    # After the password it can (the code step's alternative), though nothing else opens.
    password_login(client, owner)
    assert client.post(BEGIN_AUTHENTICATION).status_code == 200
    assert client.get("/admin/").status_code == 302
    # Registering is not open to a session that has not verified.
    assert client.post(BEGIN_REGISTRATION).status_code in (302, 403)


@pytest.mark.parametrize(
    "body",
    ["", "{", "[]", '{"id": 1}', '{"id": "x", "rawId": "x", "response": {}, "type": "public-key"}'],
)
def test_junk_posted_to_the_passkey_endpoints_is_a_4xx(client, owner, body):
    password_login(client, owner)  # the code step: a passkey instead of the code
    client.post(BEGIN_AUTHENTICATION)
    response = client.post(
        "/admin/2fa/passkeys/authentication/complete/", body, content_type="application/json"
    )
    assert 400 <= response.status_code < 500, response.status_code
    assert client.get("/admin/").status_code == 302  # still owes its second factor
    verified = Client()
    verified.force_login(owner)  # the Two factors page: adding a passkey
    verified.post(BEGIN_REGISTRATION)
    response = verified.post(
        "/admin/2fa/passkeys/registration/complete/", body, content_type="application/json"
    )
    assert 400 <= response.status_code < 500, response.status_code
    assert not WebAuthnCredential.objects.exists()
