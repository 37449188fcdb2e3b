"""manage.py two_factor_reset EMAIL --reason "..."

Removes every second factor of a staff user (authenticators and recovery codes), for
when the only owner has lost both and no one can reset it in the console. They set up a
new authenticator at their next sign-in. Audited with the reason, with no actor (whoever
holds the server ran it).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.two_factor import two_factor_reset


class Command(BaseCommand):
    help = "Remove a staff user's second factor; they enrol again at their next sign-in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--reason", required=True, help="Kept in the audit log.")

    def handle(self, *args: Any, email: str, reason: str, **options: Any) -> None:
        found = list(
            get_user_model().objects.filter(username__iexact=email.strip(), is_staff=True)[:2]
        )
        if not found:
            raise CommandError(f"No staff user {email!r}.")
        if len(found) > 1:  # usernames differing only in case: name the exact one
            raise CommandError(f"Several staff users match {email!r}: give the exact username.")
        user = found[0]
        try:
            two_factor_reset(actor=None, user_id=user.pk, reason=reason)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Second factor of {user.get_username()} removed: they set up a new one at "
                "their next sign-in."
            )
        )
