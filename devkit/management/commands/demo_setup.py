"""manage.py demo_setup: one demo staff login per role, with fresh passwords printed.

The roles that must have a second factor (owner and finance admin by default) get an
authenticator already set up, so the demo opens without an enrolment step: its key is
printed (type it, or the otpauth URI, into an authenticator app), and
``manage.py demo_totp_code EMAIL`` prints the code it shows now.

Used by ``make demo``. Refuses to run in production.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from customers import roles
from customers.services import staff_user_create
from customers.two_factor import two_factor_required
from devkit.two_factor import authenticator_for

DEMO_USERS = (
    ("owner@demo.switchboard.test", roles.OWNER),
    ("finance@demo.switchboard.test", roles.FINANCE_ADMIN),
    ("support@demo.switchboard.test", roles.SUPPORT_AGENT),
)


class Command(BaseCommand):
    help = "Create or refresh the demo staff users (one per role) and print their logins."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo_setup creates known demo logins; it never runs in production.")
        lines = []
        users = []
        for email, role in DEMO_USERS:
            password = f"demo-{role.replace('_', '-')}-{secrets.token_hex(3)}"
            user, _ = staff_user_create(actor=None, email=email, role=role, password=password)
            users.append((role, user))
            lines.append(f"  {role:<14} {email:<32} {password}")
        self.stdout.write("Demo logins (role, username, password):")
        self.stdout.write("\n".join(lines))
        keys = []
        for role, user in users:
            if two_factor_required(user):
                device = authenticator_for(user)
                keys.append(f"  {role:<14} {device.config_url}")
        if keys:
            self.stdout.write(
                "Second factor (add to an authenticator app, or print the current code with "
                "`manage.py demo_totp_code EMAIL`):"
            )
            self.stdout.write("\n".join(keys))
