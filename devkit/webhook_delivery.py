"""Post signed Stripe webhook bodies to the console's real webhook URL.

``local_delivery`` goes in-process through Django's test client (no web server needed),
``http_delivery`` over HTTP to a running console. Both return a function
``deliver(body, signature) -> HTTP status`` that posts exactly those bytes with that
``Stripe-Signature`` header. Used by ``manage.py demo_stripe_seed`` and
``manage.py ask_billing --eval``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import CommandError

Deliver = Callable[[bytes, str], int]


def local_delivery(endpoint_url: str) -> Deliver:
    from django.test import Client

    hosts = settings.ALLOWED_HOSTS
    if "testserver" in hosts or "*" in hosts:
        host = "testserver"
    else:
        host = (hosts or ["localhost"])[0]
    django_client = Client(HTTP_HOST=host.lstrip("."))
    path = urlparse(endpoint_url).path

    def deliver(body: bytes, signature: str) -> int:
        response = django_client.post(
            path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
        )
        return response.status_code

    return deliver


def http_delivery(endpoint_url: str) -> Deliver:
    def deliver(body: bytes, signature: str) -> int:
        request = urllib.request.Request(
            endpoint_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError as exc:
            raise CommandError(f"The console does not answer at {endpoint_url}: {exc}") from exc

    return deliver
