"""The only module that configures and calls the Stripe SDK for Switchboard.

The API base is a setting (``STRIPE_API_BASE``) so development, tests and the demo talk
to localstripe, never to the real Stripe. Every request is made in one API version,
``STRIPE_API_VERSION`` (dj-stripe reads the same setting for its own calls), so the
objects we fetch have the shapes the code is written for. Every HTTP request the SDK
makes (ours and dj-stripe's) is counted in ``api_calls``, so the pipeline can report how
many Stripe API calls each event cost.
"""

from __future__ import annotations

import threading
from typing import Any

import stripe
from django.conf import settings


class StripeUnavailable(Exception):
    """Stripe could not be reached or answered with an error; safe to retry later."""

    def __init__(
        self, developer_message: str, user_message: str = "Stripe could not be reached."
    ) -> None:
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
    stripe.api_version = settings.STRIPE_API_VERSION
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
    "plan": stripe.Plan,
    "invoice_payment": stripe.InvoicePayment,
    "checkout.session": stripe.checkout.Session,
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


def invoice_payments(*, invoice: str = "", payment_intent: str = "") -> list[dict[str, Any]]:
    """The InvoicePayments of an invoice or of a payment intent (basil and later name an
    invoice's payments only here)."""
    params: dict[str, Any] = {"limit": 10}
    if invoice:
        params["invoice"] = invoice
    if payment_intent:
        params["payment"] = {"type": "payment_intent", "payment_intent": payment_intent}
    try:
        return [item.to_dict() for item in stripe.InvoicePayment.list(**params).data]
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"list invoice payments {params}: {exc}") from exc


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


# --- finance actions (billing/refunds.py, billing/subscriptions.py) -------------------------


class StripeActionError(Exception):
    """Stripe refused or did not answer a finance action.

    ``user_message`` is fit for the console; ``outcome_unknown`` is True when Stripe may
    have acted without us hearing the answer (a timeout): the action must then be sent
    again with the *same* idempotency key, never as a new action.
    """

    def __init__(
        self, developer_message: str, user_message: str, *, outcome_unknown: bool = False
    ) -> None:
        super().__init__(developer_message)
        self.user_message = user_message
        self.outcome_unknown = outcome_unknown


def _translate(exc: stripe.StripeError, what: str) -> StripeActionError:
    said = (getattr(exc, "user_message", None) or str(exc) or "no details").strip()
    developer = f"{what}: {exc.__class__.__name__} http={exc.http_status} code={exc.code}: {said}"
    if isinstance(exc, stripe.APIConnectionError):
        return StripeActionError(
            developer,
            (
                "Stripe did not answer, so we do not know yet whether it acted. Nothing was "
                "changed here. Send it again from this page: the same request key is reused, "
                "so Stripe cannot do it twice."
            ),
            outcome_unknown=True,
        )
    if isinstance(exc, stripe.RateLimitError):
        message = "Stripe is receiving too many requests right now. Nothing was changed; try again in a minute."
    elif isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        message = (
            "Stripe refused Switchboard's API key. Nothing was changed; an owner must "
            "check STRIPE_SECRET_KEY."
        )
    elif isinstance(exc, stripe.IdempotencyError):
        message = (
            "Stripe saw this request before with different details. Nothing was "
            "changed; start the action again."
        )
    elif isinstance(exc, stripe.CardError):
        message = f"The card network declined it: {said} Nothing was changed."
    elif isinstance(exc, stripe.InvalidRequestError):
        message = f"Stripe refused it: {said} Nothing was changed."
    else:
        message = f"Stripe had a problem ({said}). Nothing was changed; try again later."
    return StripeActionError(developer, message)


def refund_create(
    *,
    charge_id: str,
    amount: int,
    idempotency_key: str,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
    reverse_transfer: bool = False,
    refund_application_fee: bool = False,
) -> dict[str, Any]:
    """POST /v1/refunds for ``amount`` of ``charge_id``. ``reason`` is Stripe's own
    (duplicate, fraudulent, requested_by_customer) or None; ours travels in metadata.
    For a Connect destination charge, ``reverse_transfer`` takes the refund back from
    the seller's connected account and ``refund_application_fee`` gives back the
    platform's fee, each in proportion to the amount refunded."""
    params: dict[str, Any] = {
        "charge": charge_id,
        "amount": amount,
        "metadata": metadata or {},
        "idempotency_key": idempotency_key,
    }
    if reason:
        params["reason"] = reason
    if reverse_transfer:
        params["reverse_transfer"] = True
    if refund_application_fee:
        params["refund_application_fee"] = True
    try:
        return stripe.Refund.create(**params).to_dict()
    except stripe.StripeError as exc:
        raise _translate(exc, f"refund {charge_id}") from exc


def subscription_modify(
    subscription_id: str, *, idempotency_key: str, **params: Any
) -> dict[str, Any]:
    """POST /v1/subscriptions/<id> (plan change, cancel at period end, resume)."""
    try:
        return stripe.Subscription.modify(
            subscription_id, idempotency_key=idempotency_key, **params
        ).to_dict()
    except stripe.StripeError as exc:
        raise _translate(exc, f"modify {subscription_id}") from exc


def subscription_cancel(subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
    """DELETE /v1/subscriptions/<id>: cancel now."""
    try:
        return stripe.Subscription.cancel(
            subscription_id, idempotency_key=idempotency_key
        ).to_dict()
    except stripe.StripeError as exc:
        raise _translate(exc, f"cancel {subscription_id}") from exc


def finance_read(object_type: str, object_id: str) -> dict[str, Any]:
    """``retrieve`` for the finance pages and services: errors in plain words."""
    try:
        return _RESOURCES[object_type].retrieve(object_id).to_dict()
    except stripe.StripeError as exc:
        raise _translate(exc, f"retrieve {object_type} {object_id}") from exc


def finance_list(object_type: str, *, limit: int = 20, **params: Any) -> list[dict[str, Any]]:
    """One page of objects (newest first, as Stripe lists them); errors in plain words."""
    try:
        return [item.to_dict() for item in _RESOURCES[object_type].list(limit=limit, **params).data]
    except stripe.StripeError as exc:
        raise _translate(exc, f"list {object_type}") from exc
