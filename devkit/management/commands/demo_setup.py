"""manage.py demo_setup: one demo staff login per role, with fresh passwords printed.

Used by ``make demo``. Refuses to run in production.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from customers import roles
from customers.services import staff_user_create

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
        for email, role in DEMO_USERS:
            password = f"demo-{role.replace('_', '-')}-{secrets.token_hex(3)}"
            staff_user_create(actor=None, email=email, role=role, password=password)
            lines.append(f"  {role:<14} {email:<32} {password}")
        self.stdout.write("Demo logins (role, username, password):")
        self.stdout.write("\n".join(lines))
