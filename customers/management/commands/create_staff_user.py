"""manage.py create_staff_user EMAIL --role ROLE

Creates a staff login with exactly one role. Asks for the password twice on a terminal;
with --generate-password (or no terminal) generates a strong one and prints it once.
Running it again for an existing email changes the role (and the password only when
asked with --set-password or --generate-password).
"""

from __future__ import annotations

import getpass
import secrets
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers import roles
from customers.services import staff_user_create
from customers.two_factor import is_enrolled, two_factor_required


class Command(BaseCommand):
    help = "Create a staff user with one role (owner, finance_admin, support_agent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=roles.ROLES)
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--generate-password",
            action="store_true",
            help="Generate a password and print it once.",
        )
        group.add_argument(
            "--set-password",
            action="store_true",
            help="Prompt for a new password even if the user exists.",
        )

    def handle(
        self,
        *args: Any,
        email: str,
        role: str,
        generate_password: bool,
        set_password: bool,
        **options: Any,
    ) -> None:
        exists = get_user_model().objects.filter(username__iexact=email.strip()).exists()
        password: str | None = None
        if generate_password:
            password = secrets.token_urlsafe(15)
        elif sys.stdin.isatty() and (set_password or not exists):
            password = self._prompt_password()
        elif set_password:
            raise CommandError("--set-password needs a terminal; use --generate-password instead.")
        try:
            user, generated = staff_user_create(
                actor=None, email=email, role=role, password=password
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"Staff user {user.get_username()} has role {role}."))
        shown = password if generate_password else generated
        if shown:
            self.stdout.write(f"Password (shown once): {shown}")
        if two_factor_required(user) and not is_enrolled(user):
            self.stdout.write(
                "Their role needs a second factor: the first sign-in asks them to set up an "
                "authenticator app."
            )

    def _prompt_password(self) -> str:
        for _ in range(3):
            first = getpass.getpass("Password: ")
            if not first:
                self.stderr.write("A password is required (or use --generate-password).")
                continue
            if getpass.getpass("Password (again): ") != first:
                self.stderr.write("The passwords did not match; try again.")
                continue
            return first
        raise CommandError("No password set after three tries.")
