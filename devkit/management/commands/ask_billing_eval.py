"""manage.py ask_billing --eval [--api URL --token TOKEN] (this command does the work)

Holds the chatbot (console/answerer.py) to live state: delivers fresh changes for one
customer per scenario (devkit/answer_eval.py) by signed webhook to the real webhook URL,
has them processed, asks every customer six kinds of question (paying? plan? next
renewal? last payment? refund? dispute?) through the account-state API's answer, and
scores each answer against the truth the scenario set. Prints a table by kind of
question and the score; exits non-zero unless at least 90% of the answers are correct
and none is confidently wrong.

In-process by default (Django's test client against the webhook URL, the state API's
selector), in one transaction rolled back at the end: it works on any development
database, the demo's included, and leaves it as it was (``--keep`` commits the eval's
customers, under ``…+eval-<run>@eval.switchboard.test`` emails, to look at them in the
console). With ``--api`` and ``--token`` the events go over HTTP to a running console and
the state is read from ``GET /api/v1/customers/<id>/state`` exactly as a bot reads it;
that console's workers may process the events too, and its customers stay (this command
must use the same DATABASE_URL, to see the events).

It fabricates signed Stripe events, so it is a development tool (devkit): it refuses to
run in production or with a live Stripe key.
"""

from __future__ import annotations

import io
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse
from django.utils.crypto import get_random_string
from djstripe.models import WebhookEndpoint

from billing import services as billing_services
from billing.management.commands.stripe_webhook_setup import LOCAL_ENDPOINT_ID
from billing.models import EventStatus, HandlerRun, RunStatus, StripeEvent
from billing.progress import ProgressBar
from billing.status_map import PROJECTION
from console import answerer
from console.selectors import account_state, resolve_customer
from customers.services import customer_create
from devkit import answer_eval as ev
from devkit.signing import signed
from devkit.webhook_delivery import http_delivery, local_delivery


def apply_event(event_pk: int) -> None:
    """Apply one received Stripe event now, as the ``webhooks`` worker would: the
    customer projection runs in this process (a projection that fails waits for its
    backoff, as on a worker), follow-ups are left to the workers. The one place the eval
    drives billing's pipeline."""
    billing_services.event_process(event_pk=event_pk)


def _applied(stripe_ids: list[str]) -> bool:
    """Every one of these events processed and its customer projection done."""
    rows = StripeEvent.objects.filter(stripe_id__in=stripe_ids)
    if rows.count() < len(stripe_ids) or rows.exclude(status=EventStatus.PROCESSED).exists():
        return False
    return (
        not HandlerRun.objects.filter(event__stripe_id__in=stripe_ids, handler=PROJECTION)
        .exclude(status=RunStatus.SUCCEEDED)
        .exists()
    )


class _RolledBack(Exception):
    """Ends the eval's transaction without keeping anything."""


class Command(BaseCommand):
    help = "Score the billing chatbot's answers against live state after fresh webhook changes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--api", help="Base URL of a running Switchboard, e.g. http://127.0.0.1:8000"
        )
        parser.add_argument("--token", help="API token with state:read (with --api)")
        parser.add_argument(
            "--keep",
            action="store_true",
            help="Commit the eval's customers and events (in-process; default: roll back).",
        )
        parser.add_argument(
            "--shuffle",
            type=int,
            metavar="SEED",
            help="Deliver each customer's events in a random order (seeded), each twice, "
            "as Stripe may: no order, more than once.",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=30.0,
            help="Seconds to wait for events a worker holds (default 30).",
        )

    def handle(self, *args: Any, api: str | None, token: str | None, **options: Any) -> None:
        if settings.PRODUCTION or settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")):
            raise CommandError(
                "ask_billing --eval delivers fabricated Stripe events; it never runs in "
                "production or with a live key."
            )
        host = (urlparse(settings.STRIPE_API_BASE).hostname or "").lower()
        if (api or options["keep"]) and (host == "stripe.com" or host.endswith(".stripe.com")):
            raise CommandError(
                "--keep and --api commit fabricated Stripe events, and STRIPE_API_BASE is the "
                "real Stripe (the dj-stripe mirror would look their ids up there): use them "
                "with localstripe (make demo), or run the eval in-process without --keep."
            )
        if api and not token:
            raise CommandError("--api needs --token (an API token with the state:read scope).")
        self.verbosity = options["verbosity"]
        # Only a committed eval (--keep, --api) can be finished by a worker: rolled back,
        # nothing outside this process sees its events, so waiting would only waste time.
        self.wait = options["wait"] if (api or options["keep"]) else 0
        seed = options.get("shuffle")
        self.shuffle = random.Random(seed) if seed is not None else None
        if api or options["keep"]:
            asked, customers = self._eval(api, token)
        else:
            try:
                with transaction.atomic():
                    asked, customers = self._eval(api, token)
                    raise _RolledBack
            except _RolledBack:
                pass
        self._report(asked, customers)

    def _eval(self, api: str | None, token: str | None) -> tuple[list[ev.Asked], int]:
        run = f"{time.strftime('%Y%m%d%H%M%S')}-{get_random_string(4).lower()}"
        scenarios = ev.build(run)

        endpoint_url, self.secret = self._endpoint(api or "http://127.0.0.1:8000")
        deliver = http_delivery(endpoint_url) if api else local_delivery(endpoint_url)

        bar = self._bar(len(scenarios), "Delivering fresh changes")
        for scenario in scenarios:
            self._prepare(scenario, deliver)
            bar.advance()
        bar.finish()

        state_of = (lambda ref: self._state_over_http(api, token, ref)) if api else self._state
        bar = self._bar(len(scenarios), "Asking")

        def progress(scenario: ev.Scenario, asked: list[ev.Asked]) -> None:
            bar.advance()
            if self.verbosity >= 2:
                right = sum(a.verdict == ev.CORRECT for a in asked)
                self.stdout.write(
                    f"  {scenario.customer_id:<28} {scenario.name:<24} {right}/{len(asked)} correct"
                )
            if self.verbosity >= 3:
                for a in asked:
                    got = (
                        f"hands off ({a.answer.case})" if a.answer.handoff else repr(a.answer.value)
                    )
                    self.stdout.write(
                        f"      {a.verdict:<9} {a.question!r}: expected {a.expected!r}, "
                        f"{got}: {a.answer.text}"
                    )

        asked = ev.ask_all(scenarios, state_of, answerer.answer, self._truth, progress)
        bar.finish()
        return asked, len(scenarios)

    # --- delivering ------------------------------------------------------------------

    @staticmethod
    def _endpoint(base_url: str) -> tuple[str, str]:
        """The webhook URL and its signing secret: the endpoint this console already has
        (never changed: its secret may be the one Stripe gave), else the local one that
        ``stripe_webhook_setup`` makes, as the demo does."""
        endpoints = WebhookEndpoint.objects.filter(status="enabled")
        endpoint = endpoints.filter(id=LOCAL_ENDPOINT_ID).first() or endpoints.first()
        if endpoint is None or not endpoint.secret:
            out = io.StringIO()
            call_command("stripe_webhook_setup", "--base-url", base_url, stdout=out)
            return out.getvalue().strip().splitlines()[-1], settings.STRIPE_WEBHOOK_SECRET
        path = reverse("billing:stripe_webhook", kwargs={"endpoint_uuid": endpoint.djstripe_uuid})
        return base_url.rstrip("/") + path, endpoint.secret

    def _bar(self, total: int, label: str) -> ProgressBar:
        stream = self.stderr._out if self.stderr.isatty() else io.StringIO()
        return ProgressBar(total, label, stream=stream)

    def _prepare(self, scenario: ev.Scenario, deliver: Any) -> None:
        for _ in range(scenario.records_before):
            customer_create(actor=None, email=scenario.email, name="eval record")
        batch = list(scenario.events)
        if self.shuffle is not None:
            batch = self.shuffle.sample(batch * 2, len(batch) * 2)
        self._send(batch, deliver)
        ids = list(dict.fromkeys(e["id"] for e in batch))
        for stripe_id in ids:
            row = StripeEvent.objects.filter(stripe_id=stripe_id).values_list("pk", flat=True)
            if not row:
                raise CommandError(
                    f"Event {stripe_id} was accepted but is not in this database: run the "
                    "eval with the console's DATABASE_URL."
                )
            apply_event(row[0])
        deadline = time.monotonic() + self.wait
        while not _applied(ids):  # a worker holds one: it finishes it
            if time.monotonic() > deadline:
                break  # asked anyway: the state says it is not applied, and must hand off
            time.sleep(0.2)
        # Received, deliberately not applied here: the state is behind Stripe's word.
        self._send(scenario.held, deliver)

    def _send(self, batch: list[dict[str, Any]], deliver: Any) -> None:
        for event in batch:
            status = deliver(*signed(event, self.secret))
            if status != 200:
                raise CommandError(
                    f"The webhook answered {status} to {event['type']} {event['id']}."
                )

    # --- asking --------------------------------------------------------------------------

    @staticmethod
    def _state(ref: str) -> dict[str, Any] | None:
        customer = resolve_customer(ref)
        # What the API would send: the same selector, through JSON.
        return json.loads(json.dumps(account_state(customer))) if customer else None

    @staticmethod
    def _state_over_http(base: str, token: str, ref: str) -> dict[str, Any] | None:
        url = f"{base.rstrip('/')}/api/v1/customers/{urllib.parse.quote(ref, safe='')}/state"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        for _ in range(3):
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    return json.load(response)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code == 429:
                    time.sleep(min(int(exc.headers.get("Retry-After") or 1), 60))
                    continue
                raise CommandError(f"the API answered {exc.code}: {exc.read()[:200]!r}") from exc
        raise CommandError("the API kept answering 429 (rate limited)")

    @staticmethod
    def _truth(scenario: ev.Scenario) -> dict[str, str]:
        # A running worker may have applied the held events by now: then the truth is
        # the state after them (the answer must match it, not hand off or guess).
        if scenario.held and scenario.truth_if_applied and _applied(scenario.held_ids):
            return scenario.truth_if_applied
        return scenario.truth

    # --- the report ----------------------------------------------------------------------

    def _report(self, asked: list[ev.Asked], customers: int) -> None:
        result = ev.score(asked)
        write = self.stdout.write
        misses = [a for a in asked if a.verdict != ev.CORRECT]
        if misses:
            write("Answers that were not correct:")
            for a in misses:
                got = "handed off" if a.answer.handoff else repr(a.answer.value)
                write(
                    f"  {a.verdict.upper():<9} {a.scenario} ({a.customer_id}), {a.kind}: "
                    f"{a.question!r} expected {a.expected!r}, got {got}: {a.answer.text}"
                )
        write(
            f"ask_billing --eval: {customers} customers after fresh webhook changes, "
            f"{result.total} questions"
        )
        for line in ev.table(result):
            write(line)
        verdict = "PASS" if result.passed else "FAIL"
        write(
            f"Score: {result.correct}/{result.total} correct ({result.ratio:.1%}), "
            f"{result.wrong} confident wrong, {result.handoffs} escalated to a person "
            f"({result.escalated} where an answer was possible). "
            f"Target: >= {ev.TARGET:.0%} correct and 0 confident wrong: {verdict}"
        )
        if not result.passed:
            raise CommandError(
                f"the chatbot scored {result.ratio:.1%} with {result.wrong} confident wrong "
                f"answer(s); the target is >= {ev.TARGET:.0%} and 0"
            )
