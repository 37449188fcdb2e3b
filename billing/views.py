"""The Stripe webhook endpoint: verify, store, acknowledge. Nothing else.

It never calls the Stripe API and never processes an event in the request: processing
happens on the ``webhooks`` queue after the row commits. Status codes:
400 missing/invalid/stale signature, malformed JSON or invalid UTF-8; 404 unknown
endpoint; 413 body over 1 MB; 200 for a stored event (new or duplicate), an unknown
type, or a signed envelope too broken to use (kept as "unusable" for a person).
"""

from __future__ import annotations

import json
import logging
import uuid

import stripe
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DataError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from audit.context import note_stripe_event
from billing import services
from billing.rejections import webhook_rejection_record
from billing.webhook_endpoints import endpoint_secrets

logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> JsonResponse:
    # Rejected deliveries never become a row; the dashboard and alerts count them here.
    webhook_rejection_record()
    return JsonResponse({"error": message}, status=status)


def _verify(body: str, header: str, secrets: list[str], tolerance: int) -> bool:
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
            return True
        except stripe.SignatureVerificationError:
            continue
    return False


# Deeper than any Stripe object (a few levels of expansion); PostgreSQL's JSON parser and
# Python's recursion limit both give out long before a hostile body does.
MAX_JSON_DEPTH = 64
_NOT_JSON = object()


def _too_deep(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether any item (scalars included) sits deeper than ``limit``: a scalar inside
    ``limit`` nested containers is too deep, an empty container at ``limit`` is not.

    Walked level by level so containers are opened by ``list.extend`` in C and no
    (item, depth) pair is built per node: about three times cheaper per request."""
    level = [value]
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list = []
        for item in level:
            if isinstance(item, dict):
                below.extend(item.values())
            elif isinstance(item, list):
                below.extend(item)
        level = below
        depth += 1
    return False


def _parse_json(body: str) -> object:
    """The parsed body, or ``_NOT_JSON`` for anything that is not JSON we can hold: a
    syntax error, nesting deep enough to exhaust the parser's recursion (RecursionError,
    not a ValueError) or deeper than ``MAX_JSON_DEPTH``."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_JSON
    # Every container opens with a "{" or "[" (quoted ones only add to the count): with
    # fewer than MAX_JSON_DEPTH of them nothing can nest that deep, and most Stripe
    # events skip the walk (counting is C, the walk is Python per node).
    if body.count("{") + body.count("[") < MAX_JSON_DEPTH:
        return payload
    return _NOT_JSON if _too_deep(payload) else payload


def _record_unusable(payload: object, reason: str) -> None:
    """Keep a signed but unusable envelope for a person. When its content cannot be stored
    as it is (a NUL or a lone surrogate anywhere in it), keep the reason without it."""
    try:
        with transaction.atomic():
            services.event_record_unusable(payload=payload, reason=reason)
    except (DataError, UnicodeEncodeError):
        with transaction.atomic():
            services.event_record_unusable(
                payload={"unstorable": "the body holds characters PostgreSQL cannot store"},
                reason=reason,
            )


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, endpoint_uuid: uuid.UUID) -> JsonResponse:
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _error(413, f"body larger than {limit} bytes")
    try:
        raw = request.body
    except RequestDataTooBig:
        return _error(413, f"body larger than {limit} bytes")
    if len(raw) > limit:
        return _error(413, f"body larger than {limit} bytes")

    secrets = endpoint_secrets(endpoint_uuid)
    if secrets is None:
        return _error(404, "unknown webhook endpoint")
    header = request.headers.get("Stripe-Signature", "")
    if not header:
        return _error(400, "missing Stripe-Signature header")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, "body is not valid UTF-8")
    if not _verify(body, header, secrets, settings.STRIPE_WEBHOOK_TOLERANCE):
        logger.info("webhook rejected: bad or stale signature")
        return _error(400, "invalid or expired signature")
    payload = _parse_json(body)
    if payload is _NOT_JSON:
        return _error(400, "body is not valid JSON (or nested too deeply)")
    if isinstance(payload, dict) and services._storable_text(payload.get("id")):
        note_stripe_event(payload["id"][:255])  # on every log line of this request

    try:
        if not isinstance(payload, dict):
            raise services.UnusableEnvelope("the body is not a JSON object")
        _, inserted = services.event_ingest(payload=payload, body=body)
    except services.UnusableEnvelope as exc:
        _record_unusable(payload, str(exc))
        logger.warning("webhook: signed but unusable envelope (%s)", exc)
        # 200: Stripe retrying the same broken envelope would not make it usable.
        return JsonResponse({"received": False, "unusable": str(exc)}, status=200)
    except (DataError, UnicodeEncodeError):
        logger.warning("webhook: event could not be stored (invalid JSON content)")
        return _error(400, "event content cannot be stored (e.g. NUL characters)")
    # A new event is on record as its row (the console's events page) and in the access
    # log: its own line is DEBUG, which keeps a burst's hot path off the log handler. A
    # duplicate delivery leaves no row of its own, so it is logged.
    if inserted:
        logger.debug("webhook: %s stored", payload.get("type"))
    else:
        logger.info("webhook: %s duplicate delivery", payload.get("type"))
    return JsonResponse({"received": True, "duplicate": not inserted}, status=200)
