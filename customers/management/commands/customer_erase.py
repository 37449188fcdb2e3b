"""manage.py customer_erase CUSTOMER --reason "..." [--yes]

Erase a person's personal data from Switchboard and ask the CRM and the helpdesk to
delete theirs (GDPR Art. 17). CUSTOMER is the internal id, the Stripe customer id
(``cus_…``) or the email. Irreversible: without ``--yes`` it asks for confirmation.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.models import Customer
from customers.services import customer_erase


def _find(ref: str) -> Customer:
    ref = ref.strip()
    found = Customer.objects.filter(stripe_customer_id=ref) if ref.startswith("cus_") else None
    if found is None:
        try:
            found = Customer.objects.filter(pk=uuid.UUID(ref))
        except ValueError:
            found = Customer.objects.filter(email__iexact=ref)
    matches = list(found[:2])
    if not matches:
        raise CommandError(f"No customer matches {ref!r} (internal id, cus_ id or email).")
    if len(matches) > 1:
        raise CommandError(f"Several customers have the email {ref!r}: use the internal id.")
    return matches[0]


class Command(BaseCommand):
    help = "Erase a customer's personal data everywhere (GDPR Art. 17). Irreversible."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer", help="Internal id, Stripe customer id or email.")
        parser.add_argument(
            "--reason",
            required=True,
            help="Why (e.g. the request's reference); kept in the audit log.",
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, customer: str, reason: str, yes: bool, **options: Any) -> None:
        target = _find(customer)
        if target.erased_at is not None:
            self.stdout.write(
                f"Customer {target.pk} was already erased on {target.erased_at:%Y-%m-%d}."
            )
            return
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError("Refusing to erase without confirmation: pass --yes.")
            answer = input(
                f"Erase {target} ({target.pk}) in Switchboard, the CRM and the helpdesk? "
                "This cannot be undone. Type 'erase' to go on: "
            )
            if answer.strip().lower() != "erase":
                raise CommandError("Nothing was erased.")
        try:
            customer_erase(actor=None, customer_id=target.pk, reason=reason)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Erased customer {target.pk}. CRM and helpdesk deletions are queued in the outbox "
                "(Admin -> Outbox messages shows when they are done)."
            )
        )
