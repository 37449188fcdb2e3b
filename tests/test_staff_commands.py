"""manage.py create_staff_user and demo_setup."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from audit import codes
from audit.models import AuditEntry


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)  # pytest captures stdin: not a terminal
    return out.getvalue()


@pytest.mark.django_db
def test_create_staff_user_generates_a_password_that_logs_in(rf):
    output = run(
        "create_staff_user",
        "Finance@Example.test",
        "--role",
        "finance_admin",
        "--generate-password",
    )
    password = re.search(r"Password \(shown once\): (\S+)", output).group(1)
    user = get_user_model().objects.get(username="Finance@example.test")
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["finance_admin"]
    assert authenticate(rf.post("/admin/login/"), username=user.username, password=password) == user
    entry = AuditEntry.objects.get(action=codes.STAFF_USER_CREATED)
    assert entry.data == {"email": "Finance@example.test", "role": "finance_admin"}
    assert password not in str(entry.data)


@pytest.mark.django_db
def test_rerunning_changes_the_role_and_keeps_one_group():
    run("create_staff_user", "agent@example.test", "--role", "support_agent")
    run("create_staff_user", "agent@example.test", "--role", "owner")
    user = get_user_model().objects.get(username="agent@example.test")
    assert list(user.groups.values_list("name", flat=True)) == ["owner"]
    assert AuditEntry.objects.filter(action=codes.STAFF_ROLE_CHANGED).count() == 1


@pytest.mark.django_db
def test_bad_email_is_refused_clearly():
    with pytest.raises(CommandError, match="valid email"):
        run("create_staff_user", "not-an-email", "--role", "owner")
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_demo_setup_prints_one_working_login_per_role(rf):
    output = run("demo_setup")
    logins = re.findall(r"^\s+(\w+)\s+(\S+@\S+)\s+(\S+)$", output, re.M)
    assert {role for role, _, _ in logins} == {"owner", "finance_admin", "support_agent"}
    for role, username, password in logins:
        user = authenticate(rf.post("/admin/login/"), username=username, password=password)
        assert user is not None and user.groups.get().name == role
