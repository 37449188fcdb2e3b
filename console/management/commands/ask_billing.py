"""manage.py ask_billing CUSTOMER "did my payment go through?"
manage.py ask_billing --eval [--shuffle SEED] [--keep | --api URL --token TOKEN]

The reference answerer (console/answerer.py) fed by the account-state API's logic:
locally (the same selector the API uses) or, with --api and --token, over HTTP exactly
as a bot would call it. Prints the answer, and a HANDOFF line when a person must take over.

``--eval`` scores the answerer against live state after fresh changes delivered by
webhook (at least 50 questions; exits non-zero below 90% correct or on any confident
wrong answer). It fabricates signed Stripe events, so it lives in the development kit
(``manage.py ask_billing_eval``, devkit/answer_eval.py) and is not there in production.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.answerer import answer
from console.selectors import account_state, resolve_customer


class Command(BaseCommand):
    help = "Answer a customer's billing question from the account state, or hand off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "customer", nargs="?", help="Stripe customer id, product user id or internal id"
        )
        parser.add_argument("question", nargs="?", default="did my payment go through?")
        parser.add_argument(
            "--api", help="Base URL of a running Switchboard, e.g. http://127.0.0.1:8000"
        )
        parser.add_argument("--token", help="API token (with --api)")
        parser.add_argument("--json", action="store_true", help="Print the answer as JSON")
        parser.add_argument(
            "--eval",
            action="store_true",
            help="Score the answers against live state after fresh webhook changes "
            "(development and CI; exits non-zero below target)",
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help="With --eval: commit its customers and events (default: roll them back)",
        )
        parser.add_argument(
            "--shuffle",
            type=int,
            metavar="SEED",
            help="With --eval: deliver each customer's events in a seeded random order, twice",
        )

    def _state_over_http(self, base: str, token: str, ref: str) -> dict[str, Any] | None:
        url = f"{base.rstrip('/')}/api/v1/customers/{urllib.parse.quote(ref, safe='')}/state"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise CommandError(f"the API answered {exc.code}: {exc.read()[:200]!r}") from exc

    def handle(
        self,
        *args: Any,
        customer: str | None,
        question: str,
        api: str | None,
        token: str | None,
        **options: Any,
    ) -> None:
        if options["eval"]:
            if not apps.is_installed("devkit"):
                raise CommandError(
                    "--eval delivers fabricated Stripe events: it needs the development "
                    "kit (devkit), which production does not install."
                )
            call_command(
                "ask_billing_eval",
                api=api,
                token=token,
                keep=options["keep"],
                shuffle=options["shuffle"],
                verbosity=options["verbosity"],
                stdout=self.stdout._out,
                stderr=self.stderr._out,
            )
            return
        if not customer:
            raise CommandError("Give a customer id (or --eval).")
        if api:
            if not token:
                raise CommandError("--api needs --token")
            state = self._state_over_http(api, token, customer)
        else:
            found = resolve_customer(customer)
            state = account_state(found) if found else None
        result = answer(state, question)
        if options["json"]:
            self.stdout.write(json.dumps(result.__dict__))
            return
        self.stdout.write(result.text)
        if result.handoff:
            self.stdout.write(
                f"HANDOFF: a person must take over ({result.case}"
                + (f": {result.agent_note}" if result.agent_note else "")
                + ")"
            )
