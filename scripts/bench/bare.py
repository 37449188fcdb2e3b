"""The floor to compare our webhook view with: verify the signature, insert one row.

No endpoint lookup, no envelope checks, no JSON parsing, no queue: the signature is
checked with ``STRIPE_WEBHOOK_SECRET`` (the secret ``stripe_webhook_setup`` stores on the
endpoint) and the raw body goes into ``bench_bare_event`` in one autocommitted INSERT.
The table is created by the bench (``TABLE_DDL``), not by a migration.
"""

from __future__ import annotations

import uuid

import stripe
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

TABLE_DDL = """
CREATE TABLE IF NOT EXISTS bench_bare_event (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    body text NOT NULL
)
"""


@csrf_exempt
@require_POST
def bare_webhook(request: HttpRequest, endpoint_uuid: uuid.UUID) -> HttpResponse:
    body = request.body.decode("utf-8")
    try:
        stripe.WebhookSignature.verify_header(
            body,
            request.headers.get("Stripe-Signature", ""),
            settings.STRIPE_WEBHOOK_SECRET,
            settings.STRIPE_WEBHOOK_TOLERANCE,
        )
    except stripe.SignatureVerificationError:
        return HttpResponseBadRequest("invalid signature")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_bare_event (body) VALUES (%s)", [body])
    return HttpResponse("ok")
