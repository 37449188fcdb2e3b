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
