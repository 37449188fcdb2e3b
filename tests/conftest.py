"""Shared fixtures: staff users per role, a clean Redis test database."""

from __future__ import annotations

import django_rq
import pytest

from tests.factories import PASSWORD, StaffUserFactory


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts with empty queues (Redis database reserved for tests)."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield
    connection.flushdb()


@pytest.fixture(autouse=True)
def force_login_holds_the_second_factor(monkeypatch):
    """``client.force_login(user)`` signs in as far as the user's role needs: with the
    second factor verified (an authenticator is added for a role that requires one).
    ``force_login(user, verified=False)`` stops after the password, as a real login does
    before the code step."""
    from django.test import Client

    from tests.two_factor_support import mark_verified

    original = Client.force_login

    def force_login(self, user, backend=None, *, verified=True):
        original(self, user, backend)
        if verified:
            mark_verified(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def owner(db):
    return StaffUserFactory(username="owner@example.test", role="owner")


@pytest.fixture
def finance_admin(db):
    return StaffUserFactory(username="finance@example.test", role="finance_admin")


@pytest.fixture
def support_agent(db):
    return StaffUserFactory(username="support@example.test", role="support_agent")


@pytest.fixture
def staff_by_role(owner, finance_admin, support_agent):
    return {"owner": owner, "finance_admin": finance_admin, "support_agent": support_agent}


from tests.fakes.fixtures import hubspot, slack, sync_settings, zendesk  # noqa: E402,F401
from tests.provisioning_support import product  # noqa: E402,F401
from tests.stripe_support.fixtures import webhook  # noqa: E402,F401
from tests.stripe_support.localstripe_fixtures import localstripe, localstripe_webhooks, stripe_api  # noqa: E402,E501,F401
