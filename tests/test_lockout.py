"""django-axes on the admin login: five failures lock username+IP for 30 minutes."""

from __future__ import annotations

import pytest
from django.conf import settings

from audit import codes
from audit.models import AuditEntry
from tests.factories import StaffUserFactory

LOGIN = "/admin/login/?next=/admin/"


def attempt(client, username: str, password: str, ip: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_lockout_settings():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 30 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


@pytest.mark.django_db
def test_sixth_attempt_is_refused_even_with_the_right_password_and_audited(client, password):
    user = StaffUserFactory(username="finance@example.test", role="finance_admin")
    for _ in range(4):
        response = attempt(client, user.username, "wrong password")
        assert response.status_code == 200  # the login form again, with an error
    assert not AuditEntry.objects.filter(action=codes.AUTH_LOCKOUT).exists()

    fifth = attempt(client, user.username, "wrong password")
    assert fifth.status_code == 429

    sixth = attempt(client, user.username, password)
    assert sixth.status_code == 429
    assert b"Sign-in temporarily locked" in sixth.content
    assert b"30 minutes" in sixth.content
    assert "_auth_user_id" not in client.session

    lockouts = AuditEntry.objects.filter(action=codes.AUTH_LOCKOUT)
    assert lockouts.count() >= 1
    entry = lockouts.first()
    assert entry.data["username"] == user.username
    assert entry.ip_address == "203.0.113.7"
    assert entry.actor is None


@pytest.mark.django_db
def test_lockout_is_per_username_and_ip(client, password):
    user = StaffUserFactory(username="owner@example.test", role="owner")
    for _ in range(5):
        attempt(client, user.username, "wrong password", ip="203.0.113.7")
    # The same person from another address is not locked out by someone else's guesses.
    response = attempt(client, user.username, password, ip="198.51.100.20")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
