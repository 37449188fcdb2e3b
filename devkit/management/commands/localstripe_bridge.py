"""manage.py localstripe_bridge [--base-url URL] [--interval 2] [--once]

Development and demo only. localstripe carries out refunds and subscription changes but
never sends ``charge.refunded`` or ``customer.subscription.updated``, the webhooks that
confirm the console's finance actions. This bridge polls localstripe and, for what
changed, posts the event Stripe would have sent: built around the real object read back
from localstripe (``devkit.stripe_events``) and signed with ``STRIPE_WEBHOOK_SECRET``
(``devkit.signing``), to the console's webhook endpoint. It also registers that
endpoint with localstripe for the events localstripe does send (e.g.
``customer.subscription.deleted``).

It announces what the console is waiting for: for every finance action submitted to
Stripe and not confirmed yet, the charge (refunds) or the subscription (plan change,
cancel at period end, resume) is read from localstripe and the confirming event posted,
once per state. Only those objects are touched, so states the demo seed synthesized
(a trial, a recovery) are never overwritten with what localstripe can hold. A
cancellation *now* needs no bridge: localstripe sends ``customer.subscription.deleted``.

It refuses to run unless ``STRIPE_API_BASE`` points at a localstripe on this machine
(loopback address) with a test key, outside production.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import time
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.adapters import stripe_client
from billing.models import ActionKind, ActionState, FinanceAction
from devkit import localstripe
from devkit import stripe_events as events
from devkit.signing import signed
from devkit.webhook_delivery import http_delivery, local_delivery


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _subscription_state(sub: dict[str, Any]) -> tuple[Any, ...]:
    items = (sub.get("items") or {}).get("data") or []
    price = (items[0].get("plan") or items[0].get("price") or {}) if items else {}
    return (price.get("id"), sub.get("status"), bool(sub.get("cancel_at_period_end")))


class Command(BaseCommand):
    help = (
        "Dev only: post the charge.refunded / customer.subscription.updated webhooks "
        "localstripe never sends to the console (signed, built from localstripe's objects)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default="",
            help="The console, e.g. http://127.0.0.1:8000 (default: deliver "
            "in-process, without a web server).",
        )
        parser.add_argument(
            "--interval", type=float, default=2.0, help="Seconds between polls (default 2)."
        )
        parser.add_argument("--once", action="store_true", help="Poll once and stop.")

    def handle(self, *args: Any, **options: Any) -> None:
        self._check_target()
        self.announced: set[tuple[Any, ...]] = set()
        logging.getLogger("stripe").setLevel(logging.WARNING)  # one line per poll otherwise
        base_url = options["base_url"].rstrip("/")
        out = io.StringIO()
        call_command(
            "stripe_webhook_setup", "--base-url", base_url or "http://127.0.0.1:8000", stdout=out
        )
        endpoint_url = out.getvalue().strip().splitlines()[-1]
        from devkit.management.commands.demo_stripe_seed import WEBHOOK_ID

        self.deliver = http_delivery(endpoint_url) if base_url else local_delivery(endpoint_url)
        if base_url:
            # What localstripe does send (subscription deleted, ...) goes straight there.
            localstripe.LocalStripeClient(settings.STRIPE_API_BASE).register_webhook(
                WEBHOOK_ID, endpoint_url, settings.STRIPE_WEBHOOK_SECRET
            )
        self.stdout.write(f"localstripe bridge: {settings.STRIPE_API_BASE} -> {endpoint_url}")
        while True:
            try:
                sent = self.poll()
            except (CommandError, stripe_client.StripeUnavailable) as exc:
                if options["once"]:
                    raise
                # The console or localstripe is not up yet (or restarting): try again.
                self.stderr.write(f"localstripe bridge: {exc}; retrying")
                sent = []
            for line in sent:
                self.stdout.write(line)
            if options["once"]:
                self.stdout.write(f"{len(sent)} event(s) sent.")
                return
            time.sleep(options["interval"])  # a polling daemon, not a wait for work

    def _check_target(self) -> None:
        api_base = settings.STRIPE_API_BASE
        host = (urlparse(api_base).hostname or "").lower()
        if settings.PRODUCTION or not settings.STRIPE_SECRET_KEY.startswith("sk_test_"):
            raise CommandError(
                "localstripe_bridge runs only in development, with a test key (sk_test_...)."
            )
        if not _is_loopback(host):
            raise CommandError(
                f"STRIPE_API_BASE is {api_base}: the bridge only talks to a "
                "localstripe on this machine (127.0.0.1 / localhost)."
            )
        if not localstripe.LocalStripeClient(api_base).answers(timeout=3):
            raise CommandError(f"No localstripe answers at {api_base}.")

    def _post(self, event: dict[str, Any]) -> int:
        # The SDK gives decimal fields as Decimal; Stripe's JSON has them as strings.
        event = json.loads(json.dumps(event, default=str))
        return self.deliver(*signed(event, settings.STRIPE_WEBHOOK_SECRET))

    def poll(self) -> list[str]:
        """One pass over the finance actions waiting for Stripe's word: post the event
        Stripe would send for each, from the object as localstripe has it now."""
        sent = []
        waiting = FinanceAction.objects.filter(state=ActionState.SUBMITTED).exclude(
            kind=ActionKind.CANCEL_NOW
        )  # localstripe sends customer.subscription.deleted
        charges = set(waiting.filter(kind=ActionKind.REFUND).values_list("charge_id", flat=True))
        subs = set(
            waiting.exclude(kind=ActionKind.REFUND).values_list("stripe_subscription_id", flat=True)
        )
        for charge_id in sorted(charges):
            charge = stripe_client.retrieve("charge", charge_id)
            if self._once(("charge", charge_id, charge.get("amount_refunded"))):
                status = self._post(events.event("charge.refunded", charge))
                sent.append(
                    f"charge.refunded {charge_id} (refunded "
                    f"{charge.get('amount_refunded')}) -> HTTP {status}"
                )
        for sub_id in sorted(subs):
            sub = stripe_client.retrieve("subscription", sub_id)
            state = _subscription_state(sub)
            if sub.get("status") != "canceled" and self._once(("sub", sub_id, state)):
                status = self._post(events.event("customer.subscription.updated", sub))
                sent.append(
                    f"customer.subscription.updated {sub_id} (plan {state[0]}, "
                    f"cancel at period end {state[2]}) -> HTTP {status}"
                )
        return sent

    def _once(self, fact: tuple[Any, ...]) -> bool:
        """Each state is announced once per run, even while the worker is still busy."""
        if fact in self.announced:
            return False
        self.announced.add(fact)
        return True
