"""manage.py demo_totp_code EMAIL: the code a demo login's authenticator shows now.

For trying the demo without an authenticator app. Refuses to run in production.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice

from devkit.two_factor import current_code


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo staff user's authenticator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, email: str, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo_totp_code reads second-factor keys; never in production.")
        device = (
            TOTPDevice.objects.filter(user__username__iexact=email.strip(), confirmed=True)
            .order_by("pk")
            .first()
        )
        if device is None:
            raise CommandError(f"{email} has no authenticator set up.")
        try:
            self.stdout.write(current_code(device))
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
