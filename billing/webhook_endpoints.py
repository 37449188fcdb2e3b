"""Webhook endpoint secrets, read from dj-stripe's ``WebhookEndpoint`` records.

The webhook URL names the endpoint by its ``djstripe_uuid``; the secrets are cached in
process for a short time so the hot path does not query for them on every delivery.
``STRIPE_WEBHOOK_PREVIOUS_SECRET`` is accepted beside the endpoint's own during a rotation
(Stripe then sends one ``v1`` signature per active secret).
"""

from __future__ import annotations

import threading
import time
import uuid

from django.conf import settings
from djstripe.models import WebhookEndpoint

_CACHE_SECONDS = 30.0
_cache: dict[uuid.UUID, tuple[float, list[str] | None]] = {}
_lock = threading.Lock()


def endpoint_secrets(endpoint_uuid: uuid.UUID) -> list[str] | None:
    """The secrets that may sign deliveries to this endpoint; None if it is unknown."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(endpoint_uuid)
    if hit and hit[0] > now:
        return hit[1]
    secret = (
        WebhookEndpoint.objects.filter(djstripe_uuid=endpoint_uuid)
        .values_list("secret", flat=True)
        .first()
    )
    secrets = None
    if secret is not None:
        secrets = [s for s in (secret, settings.STRIPE_WEBHOOK_PREVIOUS_SECRET) if s]
    with _lock:
        _cache[endpoint_uuid] = (now + _CACHE_SECONDS, secrets)
    return secrets


def clear_cache() -> None:
    with _lock:
        _cache.clear()
