"""Admin pages that third-party apps bring must not bypass roles or the audit log."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, resolve, reverse
from djstripe import models as dj

from audit import codes
from audit.models import AuditEntry
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

CANCEL_ROUTE = "/admin/djstripe/subscription/action/_cancel/subscription/"


@pytest.mark.parametrize("role", ["support_agent", "finance_admin", "owner"])
def test_djstripe_custom_action_route_is_gone_for_every_role(client, staff_by_role, role):
    # dj-stripe's own route cancels subscriptions in Stripe for any staff user, unaudited.
    client.force_login(staff_by_role[role])
    with pytest.raises(NoReverseMatch):
        reverse(
            "admin:djstripe_custom_action",
            kwargs={"action_name": "_cancel", "model_name": "subscription"},
        )
    assert resolve(CANCEL_ROUTE).url_name != "djstripe_custom_action"
    # What is left is the stock change-page path, for an object that does not exist.
    response = client.post(CANCEL_ROUTE, {"_selected_action": ["1"]}, follow=True)
    assert b"form_custom_action" not in response.content


def test_djstripe_mirror_is_read_only_and_has_no_bulk_actions(client, finance_admin, rf):
    client.force_login(finance_admin)
    response = client.get("/admin/djstripe/subscription/")
    assert response.status_code == 200
    assert b"Cancel selected" not in response.content and b'name="action"' not in response.content
    request = rf.get("/")
    request.user = finance_admin
    for model in (dj.Subscription, dj.Charge, dj.Customer, dj.Refund):
        model_admin = admin.site._registry[model]
        assert model_admin.get_actions(request) == {}
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)


def test_owner_edits_a_staff_login_audited_and_cannot_grant_superuser_or_groups(client, owner):
    agent = StaffUserFactory(username="agent@example.test", role="support_agent")
    client.force_login(owner)
    response = client.post(
        f"/admin/auth/user/{agent.pk}/change/",
        {
            "username": agent.username,
            "email": agent.email,
            "first_name": "Grace",
            "last_name": "",
            "is_active": "on",
            "is_staff": "on",
            # forced by hand: read-only fields are ignored
            "is_superuser": "on",
            "groups": [Group.objects.get(name="owner").pk],
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.first_name == "Grace"
    assert not agent.is_superuser
    assert list(agent.groups.values_list("name", flat=True)) == ["support_agent"]
    entry = AuditEntry.objects.get(action=codes.STAFF_USER_UPDATED)
    assert entry.actor == owner and entry.data["changed"] == ["first_name"]


def test_password_set_by_an_owner_is_audited(client, owner):
    agent = StaffUserFactory(username="agent2@example.test", role="support_agent")
    client.force_login(owner)
    response = client.post(
        f"/admin/auth/user/{agent.pk}/password/",
        {
            "password1": "a-long-new-passphrase-42",
            "password2": "a-long-new-passphrase-42",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password("a-long-new-passphrase-42")
    entry = AuditEntry.objects.get(action=codes.STAFF_PASSWORD_SET)
    assert entry.actor == owner and "a-long-new-passphrase-42" not in str(entry.data)
