"""Product webhook endpoints: create, enable or disable, rotate the signing secret.

Owners only, audited. A secret is ``whsec_`` + base64 of 32 random bytes (Standard
Webhooks' format); the clear secret is returned once, to be shown once, and never goes
into an audit entry, a log line or a page after that (``ProductEndpoint.secret_hint``).
Adding or enabling an endpoint sends it the ``customer.entitled`` of every customer still
waiting for the product. Rotation keeps the previous secret signing for ``PRODUCT_WEBHOOK_SECRET_OVERLAP_HOURS``
(both signatures in every message meanwhile), so the product can switch without losing
a message.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit import codes
from audit.services import audit_record
from provisioning import states
from provisioning.models import ProductEndpoint
from provisioning.permissions import can_manage_endpoints, can_rotate_secret

LOOPBACK_HOSTS = {"localhost"}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def clean_url(url: str) -> str:
    """An https URL (plain http only for this machine, in development and tests)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Give the full URL of the product's webhook endpoint (https://…).")
    if parts.username or parts.password:
        raise ValidationError("Put no user name or password in the URL: messages are signed.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValidationError("Use https: webhooks carry customer data.")
    if len(url) > 500:
        raise ValidationError("The URL is longer than 500 characters.")
    return url


def _where(endpoint: ProductEndpoint) -> str:
    """Scheme, host and port only: a URL's path or query may carry a token."""
    parts = urlsplit(endpoint.url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def endpoint_create(*, actor: Any, url: str, description: str = "") -> tuple[ProductEndpoint, str]:
    """A new enabled endpoint; returns it and its clear secret (show it once)."""
    if not can_manage_endpoints(actor):
        raise PermissionDenied("Only owners add product endpoints.")
    url = clean_url(url)
    secret = new_secret()
    with transaction.atomic():
        endpoint = ProductEndpoint.objects.create(
            url=url, description=description.strip()[:200], secret=secret
        )
        audit_record(
            action=codes.PRODUCT_ENDPOINT_CREATED,
            actor=actor,
            target=endpoint,
            data={"where": _where(endpoint), "signing_hint": endpoint.secret_hint},
        )
        states.entitled_resend(cause=f"product_endpoint:{endpoint.pk}")
    return endpoint, secret


def endpoint_set_enabled(*, actor: Any, endpoint_pk: int, enabled: bool) -> bool:
    """Enable or disable; False when it already was."""
    if not can_manage_endpoints(actor):
        raise PermissionDenied("Only owners change product endpoints.")
    with transaction.atomic():
        endpoint = ProductEndpoint.objects.select_for_update().get(pk=endpoint_pk)
        if endpoint.enabled == enabled:
            return False
        endpoint.enabled = enabled
        endpoint.save(update_fields=["enabled", "updated_at"])
        audit_record(
            action=codes.PRODUCT_ENDPOINT_UPDATED,
            actor=actor,
            target=endpoint,
            data={"where": _where(endpoint), "before": not enabled, "after": enabled},
        )
        if enabled:
            states.entitled_resend(cause=f"product_endpoint:{endpoint.pk}")
    return True


def endpoint_rotate_secret(*, actor: Any, endpoint_pk: int, reason: str = "") -> str:
    """A new current secret; the old one keeps signing for the overlap. Returns the new
    clear secret (show it once)."""
    if not can_rotate_secret(actor):
        raise PermissionDenied("Only owners rotate signing secrets.")
    now = timezone.now()
    overlap = timedelta(hours=settings.PRODUCT_WEBHOOK_SECRET_OVERLAP_HOURS)
    with transaction.atomic():
        endpoint = ProductEndpoint.objects.select_for_update().get(pk=endpoint_pk)
        if endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
            # A second rotation now would drop the secret the product may still verify
            # with (a reloaded confirmation page, a double click): refuse it.
            until = timezone.localtime(endpoint.previous_secret_expires_at)
            raise ValidationError(
                f"A rotation is in progress: the previous secret signs until "
                f"{until:%Y-%m-%d %H:%M %Z}. Rotate again after that."
            )
        old_hint = endpoint.secret_hint
        secret = new_secret()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + overlap
        endpoint.secret = secret
        endpoint.save()
        audit_record(
            action=codes.PRODUCT_ENDPOINT_SECRET_ROTATED,
            actor=actor,
            target=endpoint,
            data={
                "where": _where(endpoint),
                "old_signing_hint": old_hint,
                "new_signing_hint": endpoint.secret_hint,
                "old_signs_until": endpoint.previous_secret_expires_at.isoformat(),
                "reason": reason[:300],
            },
        )
    return secret
