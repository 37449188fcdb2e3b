"""manage.py stripe_webhook_setup --base-url URL

Creates or updates the local dj-stripe ``WebhookEndpoint`` record that holds
``STRIPE_WEBHOOK_SECRET``, and prints the full webhook URL as the last line. Pointed at
a local server (localstripe, the demo, tests) it never calls Stripe. Against the real
Stripe, ``--register`` also creates the endpoint there through the API, pinned to
``STRIPE_API_VERSION`` (without it Stripe renders the events in the account's default
version, whatever that is), and stores the signing secret Stripe returns.

``--connect`` does the same for a second endpoint that receives the events of connected
accounts (marketplace sellers: ``payout.failed``), with ``STRIPE_CONNECT_WEBHOOK_SECRET``
(or, with ``--register``, the secret Stripe returns for an endpoint made with
``connect=true``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from djstripe.models import WebhookEndpoint

from billing.webhook_endpoints import clear_cache

LOCAL_ENDPOINT_ID = "we_switchboard_local"
CONNECT_ENDPOINT_ID = "we_switchboard_connect"
# What a Connect endpoint is for: the events of sellers' accounts the pipeline acts on.
CONNECT_EVENTS = ["payout.failed"]


class Command(BaseCommand):
    help = "Create/update the webhook endpoint record and print its URL (last line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            required=True,
            help="Public base URL of this console, e.g. https://console.example.com",
        )
        parser.add_argument(
            "--register",
            action="store_true",
            help="Also register the endpoint with the real Stripe API.",
        )
        parser.add_argument(
            "--connect",
            action="store_true",
            help="The Connect endpoint (events of connected accounts) instead.",
        )

    def handle(
        self, *args: Any, base_url: str, register: bool, connect: bool = False, **options: Any
    ) -> None:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CommandError(f"--base-url must be an http(s) URL, not {base_url!r}")
        secret_name = "STRIPE_CONNECT_WEBHOOK_SECRET" if connect else "STRIPE_WEBHOOK_SECRET"
        if not getattr(settings, secret_name) and not (connect and register):
            raise CommandError(f"{secret_name} is not set.")
        endpoint_id = CONNECT_ENDPOINT_ID if connect else LOCAL_ENDPOINT_ID
        endpoint = WebhookEndpoint.objects.filter(id=endpoint_id).first()
        if endpoint is None:
            endpoint = WebhookEndpoint(
                id=endpoint_id,
                livemode=settings.STRIPE_LIVE_MODE,
                enabled_events=["*"],
                status="enabled",
                api_version=settings.STRIPE_API_VERSION,
            )
        path = reverse("billing:stripe_webhook", kwargs={"endpoint_uuid": endpoint.djstripe_uuid})
        url = base_url.rstrip("/") + path
        secret = getattr(settings, secret_name)
        if register:
            url, secret = self._register_with_stripe(url, connect=connect)
        endpoint.url = url
        endpoint.secret = secret
        endpoint.api_version = settings.STRIPE_API_VERSION
        endpoint.save()
        clear_cache()
        self.stdout.write(
            f"Webhook endpoint {endpoint.id} stores the signing secret "
            f"({'from Stripe' if register else secret_name})."
        )
        self.stdout.write(url)

    def _register_with_stripe(self, url: str, *, connect: bool = False) -> tuple[str, str]:
        import stripe

        from billing.status_map import RULES

        extra = {"connect": True} if connect else {}
        created = stripe.WebhookEndpoint.create(
            url=url,
            enabled_events=CONNECT_EVENTS if connect else sorted(RULES),
            api_version=settings.STRIPE_API_VERSION,
            **extra,
        )
        self.stdout.write(
            f"Registered with Stripe as {created.id} (API version {settings.STRIPE_API_VERSION})."
        )
        return url, created.secret
