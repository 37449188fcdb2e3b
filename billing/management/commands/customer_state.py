"""manage.py customer_state STRIPE_CUSTOMER_ID [--json]

Prints the canonical record of a Stripe customer with its recent events and handler runs.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.selectors import customer_state


class Command(BaseCommand):
    help = "Show the canonical customer for a Stripe customer id, its events and handler runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("stripe_customer_id")
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")
        parser.add_argument("--limit", type=int, default=20, help="How many recent events.")

    def handle(
        self, *args: Any, stripe_customer_id: str, json: bool, limit: int, **options: Any
    ) -> None:
        state = customer_state(stripe_customer_id=stripe_customer_id, limit=limit)
        if state is None:
            raise CommandError(f"No canonical customer is linked to {stripe_customer_id}.")
        if json:
            self.stdout.write(_dumps(state))
            return
        c = state["customer"]
        self.stdout.write(
            f"{c['email'] or '(no email yet)'}  {c['status']}  plan={c['plan_id'] or '-'}  "
            f"payment={c['last_payment_status']}  matched={c['match_state']}"
        )
        for event in state["events"]:
            self.stdout.write(f"  {event['created']}  {event['type']:<36} {event['status']}")
        for run in state["handler_runs"]:
            self.stdout.write(
                f"    {run['event']} {run['handler']:<22} {run['status']:<9} {run['note']}"
            )


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
