"""The only module that configures and calls the Stripe SDK for Switchboard.

The API base is a setting (``STRIPE_API_BASE``) so development, tests and the demo talk
to localstripe, never to the real Stripe. Every HTTP request the SDK makes (ours and
dj-stripe's) is counted in ``api_calls``, so the pipeline can report how
many Stripe API calls each event cost.
"""

from __future__ import annotations

import threading
from typing import Any

import stripe
from django.conf import settings


class StripeUnavailable(Exception):
    """Stripe could not be reached or answered with an error; safe to retry later."""

    def __init__(self, developer_message: str, user_message: str = "Stripe could not be reached.") -> None:
        super().__init__(developer_message)
        self.user_message = user_message


class _CallCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self) -> None:
        with self._lock:
            self.total += 1


api_calls = _CallCounter()


def configure() -> None:
    stripe.api_key = settings.STRIPE_SECRET_KEY
    stripe.api_base = settings.STRIPE_API_BASE.rstrip("/")
    stripe.max_network_retries = 0
    stripe.default_http_client = _make_http_client()


def _make_http_client() -> Any:
    base = stripe.new_default_http_client()

    class Counting(type(base)):  # type: ignore[misc]
        """The SDK's default HTTP client, counting each HTTP request it sends."""

        def _request_internal(self, *args: Any, **kwargs: Any) -> Any:
            api_calls.add()
            return super()._request_internal(*args, **kwargs)

    return Counting(timeout=settings.STRIPE_TIMEOUT_SECONDS)


_RESOURCES = {
    "customer": stripe.Customer,
    "subscription": stripe.Subscription,
    "invoice": stripe.Invoice,
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "dispute": stripe.Dispute,
    "refund": stripe.Refund,
}


def can_retrieve(object_type: str) -> bool:
    return object_type in _RESOURCES


def retrieve(object_type: str, object_id: str) -> dict[str, Any]:
    """The current state of one Stripe object as a plain dict."""
    resource = _RESOURCES.get(object_type)
    if resource is None:
        raise ValueError(f"cannot retrieve Stripe objects of type {object_type!r}")
    try:
        return resource.retrieve(object_id).to_dict()
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"retrieve {object_type} {object_id}: {exc}") from exc


def list_all(object_type: str, **params: Any) -> Any:
    """Iterate over every object of a type, page by page (100 a page)."""
    resource = _RESOURCES.get(object_type)
    if resource is None:
        raise ValueError(f"cannot list Stripe objects of type {object_type!r}")
    try:
        page = resource.list(limit=100, **params)
        while True:
            for item in page.data:
                yield item.to_dict()
            if not page.has_more or not page.data:
                return
            page = resource.list(limit=100, starting_after=page.data[-1].id, **params)
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"list {object_type}: {exc}") from exc
