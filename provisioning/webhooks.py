"""Signed webhooks to the product (Standard Webhooks), delivered through the outbox.

Every message is an outbox row on channel ``product_webhook`` (one per enabled endpoint),
written in the transaction of the change that causes it, retried with the outbox's
backoff until ``SYNC_RETRY_HORIZON_HOURS``, then dead (alert, review ticket). Headers:

- ``webhook-id``: the row's stable message id: the same on every retry of one message,
  so the product can drop a message it already handled;
- ``webhook-timestamp``: the time of *this* attempt (signed, so a retry carries a fresh
  one within the verifier's tolerance);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; while a
  rotated secret is still in its overlap, one signature per secret, space-separated.

Body: ``{"type": …, "timestamp": …, "data": {…}}`` (console/openapi.json, ``webhooks``).

How the product answers: 2xx delivered; 401/403 pauses the channel (the product refuses
our signature: a secret mismatch) with one alert; 410 Gone is final (dead); anything
else (4xx, 5xx, 429 with Retry-After, timeouts) is retried.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from config import problems
from customers.models import Customer
from delivery import http
from delivery.errors import ConfigurationError, PermanentError, RetryableError
from delivery.models import OutboxMessage
from delivery.outbox import outbox_write
from delivery.senders import Delivered
from provisioning.models import ProductEndpoint

CHANNEL = "product_webhook"
VENDOR = "product"  # its rate-limit bucket (settings.SYNC_RATE_LIMITS["product"])

# The catalogue: every event type Switchboard sends the product (console/openapi.json).
ENTITLED = "customer.entitled"
ENTITLEMENT_CHANGED = "customer.entitlement_changed"
REVOKED = "customer.revoked"
ORDER_PAID = "order.paid"
ORDER_REFUNDED = "order.refunded"
TEST_PING = "test.ping"
EVENT_TYPES = {
    ENTITLED: "The customer paid: give them access to the plan (answer 2xx once provisioned).",
    ENTITLEMENT_CHANGED: "The customer's plan changed: adjust their access.",
    REVOKED: "The dunning policy (or the end of the subscription) took access away.",
    ORDER_PAID: "A one-time order was paid.",
    ORDER_REFUNDED: "An order was refunded, in part or in full.",
    TEST_PING: "A test message sent by `manage.py product_webhook_test`.",
}


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def customer_data(customer: Customer, **extra: Any) -> dict[str, Any]:
    """The customer as the product sees it: canonical id, its own user id, email, plan,
    billing status and the Stripe ids (never card data)."""
    return {
        "customer_id": str(customer.pk),
        "product_user_id": customer.product_user_id or None,
        "email": customer.email or None,
        "name": customer.name or None,
        "plan": {"id": customer.plan_id or None, "name": customer.plan_name or None},
        "status": customer.status,
        "current_period_end": _iso(customer.current_period_end),
        "stripe_customer_id": customer.stripe_customer_id or None,
        "stripe_subscription_id": customer.subscription_id or None,
        **extra,
    }


def body_of(event_type: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """The Standard Webhooks payload: ``type``, ``timestamp`` (when it happened), ``data``."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown product event type {event_type!r}")
    return {"type": event_type, "timestamp": _iso(at or timezone.now()), "data": data}


def message_id(dedupe_key: str) -> str:
    """A stable Standard Webhooks message id for one message (``msg_<32 hex>``)."""
    return "msg_" + hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(secrets: list[str], msg_id: str, at: datetime, raw: bytes) -> str:
    """``webhook-signature``: one ``v1,<sig>`` per secret, space-separated."""
    data = raw.decode()
    return " ".join(Webhook(secret).sign(msg_id, at, data) for secret in secrets)


def headers_for(endpoint: ProductEndpoint, msg_id: str, raw: bytes) -> dict[str, str]:
    now = timezone.now()
    at = datetime.fromtimestamp(int(now.timestamp()), tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": sign(endpoint.signing_secrets(now), msg_id, at, raw),
        "User-Agent": "Switchboard-Webhooks/1",
    }


# --- writing -------------------------------------------------------------------------


def enabled_endpoints() -> list[ProductEndpoint]:
    return list(ProductEndpoint.objects.filter(enabled=True).order_by("pk"))


def product_event_send(
    event_type: str,
    data: dict[str, Any],
    *,
    cause: str,
    dedupe_key: str,
    customer: Customer | None = None,
    meta: dict[str, Any] | None = None,
) -> list[OutboxMessage]:
    """Queue one product event to every enabled endpoint, in the caller's transaction.

    ``dedupe_key`` names the message (``customer.entitled:<customer>:<generation>``): the
    same key again writes nothing, so a retried or replayed cause never sends twice.
    ``meta`` is kept on the row for whoever reads the outcome (provisioning's generation).
    Returns the rows written now (empty when there is no endpoint or all existed)."""
    body = body_of(event_type, data)
    written = []
    for endpoint in enabled_endpoints():
        key = f"product:{endpoint.pk}:{dedupe_key}"
        row, created = outbox_write(
            channel=CHANNEL,
            kind=event_type,
            dedupe_key=key,
            customer=customer,
            cause=cause,
            payload={
                "endpoint": endpoint.pk,
                "webhook_id": message_id(key),
                "body": body,
                "meta": meta or {},
            },
        )
        if created:
            written.append(row)
    return written


# --- delivering ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    milliseconds: int
    body: Any


def _auth_alert_key(endpoint: ProductEndpoint) -> str:
    return f"product_endpoint_auth:{endpoint.pk}"


def post(endpoint: ProductEndpoint, msg_id: str, body: dict[str, Any]) -> Answer:
    """Sign and POST one message; 2xx returns, anything else raises a delivery error."""
    raw = encode(body)
    started = time.monotonic()
    try:
        response = http.request(
            VENDOR, "POST", endpoint.url, headers=headers_for(endpoint, msg_id, raw), payload=raw
        )
    except PermanentError as exc:
        if exc.status == 410:
            raise PermanentError(
                exc.developer_message, user_message="the product says this endpoint is gone (410)"
            ) from exc
        # A 4xx from the product is usually a deploy in progress or a bug being fixed:
        # retried like a 5xx until the horizon, then dead (Standard Webhooks practice).
        raise RetryableError(
            exc.developer_message, user_message=exc.user_message, status=exc.status
        ) from exc
    except ConfigurationError as exc:
        # One endpoint refusing our signature (a stale secret after a rotation) must not
        # pause the channel every endpoint shares: this endpoint's rows are retried with
        # backoff, and one alert per endpoint names the cause until it answers 2xx again.
        problems.report(
            key=_auth_alert_key(endpoint),
            title=f"Product endpoint #{endpoint.pk} refuses our signature ({exc.status})",
            detail="Check the endpoint's signing secret in the product; its messages are "
            "retried until the retry horizon.",
        )
        raise RetryableError(
            exc.developer_message,
            user_message=f"the product refused our signature ({exc.status}): check the "
            "endpoint's signing secret in the product",
            status=exc.status,
        ) from exc
    problems.resolve(key=_auth_alert_key(endpoint))
    elapsed = int((time.monotonic() - started) * 1000)
    return Answer(status=response.status, milliseconds=elapsed, body=response.body)


def deliver_product(message: OutboxMessage) -> Delivered:
    """The ``product_webhook`` channel's sender. A 2xx to ``customer.entitled`` is the
    product confirming provisioning (provisioning/states.py); a failure of it puts the
    customer in ``retrying`` before the error goes back to the outbox."""
    from provisioning import states

    payload = message.payload
    endpoint = ProductEndpoint.objects.filter(pk=payload.get("endpoint")).first()
    if endpoint is None or not endpoint.enabled:
        raise PermanentError(
            f"product endpoint #{payload.get('endpoint')} is deleted or disabled",
            user_message="the product endpoint was disabled or deleted before delivery",
        )
    try:
        answer = post(endpoint, payload["webhook_id"], payload["body"])
    except RetryableError as exc:
        if message.kind == ENTITLED and message.customer_id:
            states.delivery_failed(
                message.customer_id,
                generation=(payload.get("meta") or {}).get("generation"),
                error=exc.user_message,
                attempt=message.attempts,
                cause=f"outbox:{message.pk}",
            )
        raise
    if message.kind == ENTITLED and message.customer_id:
        states.provisioned(
            message.customer_id,
            generation=(payload.get("meta") or {}).get("generation"),
            how=f"the product answered {answer.status} to customer.entitled",
            cause=f"outbox:{message.pk}",
        )
    return Delivered(f"product answered {answer.status} in {answer.milliseconds} ms")


def send_test(endpoint: ProductEndpoint) -> tuple[str, Answer]:
    """A signed ``test.ping`` straight to ``endpoint`` (not through the outbox): for
    ``manage.py product_webhook_test``. Raises a delivery error when it is not a 2xx."""
    msg_id = "msg_test_" + hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:24]
    body = body_of(TEST_PING, {"endpoint_id": endpoint.pk, "message": "Hello from Switchboard"})
    return msg_id, post(endpoint, msg_id, body)
