"""The one function that writes audit entries, and the masking it applies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from audit import codes, context
from audit.masking import mask_card_numbers
from audit.models import AuditEntry

MASK = "***"
# Keys whose names look secret are masked whatever their value. Keys that only *contain*
# "key" but are not secrets (an idempotency key is an audit fact, not a credential)
# are listed explicitly.
_SECRET_KEY_PATTERN = re.compile(r"secret|token|password|passwd|key|authorization|cvc|cvv", re.I)
_NOT_SECRET_KEYS = frozenset({"idempotency_key"})


def mask_secrets(value: Any, *, _key: str = "") -> Any:
    """A copy of ``value`` with secret-looking keys and card numbers masked, recursively."""
    if _key and _key.lower() not in _NOT_SECRET_KEYS and _SECRET_KEY_PATTERN.search(_key):
        return MASK
    if isinstance(value, Mapping):
        return {str(k): mask_secrets(v, _key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return mask_card_numbers(str(value))


def audit_record(
    *,
    action: str,
    actor: Any | None = None,
    target: models.Model | None = None,
    data: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    ip_address: str | None = None,
) -> AuditEntry:
    """Append one audit entry.

    ``actor`` is the staff user who acted, ``None`` for system work. ``data`` holds
    before/after values, the reason and anything else worth keeping; it is masked before
    it is stored. Request id and IP default to the current request's (see
    ``audit.context``). Call it inside the service's transaction so the entry and the
    change it describes commit together.
    """
    if action not in codes.ALL_CODES:
        raise ValueError(f"unknown audit action {action!r}: add it to audit/codes.py")
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    entry = AuditEntry(
        actor=actor,
        actor_label=(actor.get_username() if actor is not None else ""),
        action=action,
        data=mask_secrets(dict(data or {})),
        request_id=request_id if request_id is not None else context.current_request_id(),
        ip_address=ip_address if ip_address is not None else context.current_client_ip(),
    )
    if target is not None:
        entry.target_type = ContentType.objects.get_for_model(target, for_concrete_model=False)
        entry.target_id = str(target.pk)
        entry.target_label = str(target)[:200]
    entry.save(force_insert=True)
    return entry
