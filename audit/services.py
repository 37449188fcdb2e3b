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


ERASED = "[erased]"


def _term_pattern(terms: tuple[str, ...], *, whole_words: bool) -> re.Pattern[str]:
    """Any of ``terms``, case-insensitive; with ``whole_words`` only where no letter or
    digit touches it ("Max" is not in "maximum", "Pro" not in "provisioning")."""
    alternatives = "|".join(re.escape(term) for term in terms)
    if whole_words:
        alternatives = rf"(?<!\w)(?:{alternatives})(?!\w)"
    return re.compile(alternatives, re.IGNORECASE)


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    """A copy of ``value`` with every string that ``pattern`` finds in replaced."""
    if isinstance(value, Mapping):
        return {k: _scrub(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item, pattern) for item in value]
    if isinstance(value, str) and pattern.search(value):
        return ERASED
    return value


def _values_of(value: Any, keys: tuple[str, ...]) -> set[str]:
    """Every string stored under one of ``keys`` anywhere in ``value``."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k in keys and isinstance(v, str):
                found.add(v)
            found |= _values_of(v, keys)
    elif isinstance(value, list):
        for item in value:
            found |= _values_of(item, keys)
    return found


def audit_redact(
    *,
    target: models.Model,
    terms: list[str],
    tombstone: str,
    personal_keys: tuple[str, ...] = ("email", "name"),
) -> int:
    """Replace a person's data in existing entries: the one path that rewrites the log.

    Entries about ``target`` get ``tombstone`` as their label; in those and in any entry
    whose data mentions one of ``terms`` (email, name, and any earlier value of
    ``personal_keys`` the entries about ``target`` recorded), every string holding a term
    becomes "[erased]". Ids, actions, actors and times stay, so the trail still says who
    did what and when. Call it inside the erasing transaction (``SET LOCAL`` ends with
    it), and record the erasure itself with ``audit_record``. Returns entries rewritten.
    """
    from django.db import connection, transaction
    from django.db.models import Q

    target_type = ContentType.objects.get_for_model(target, for_concrete_model=False)
    about = Q(target_type=target_type, target_id=str(target.pk))
    # Earlier values too: an entry about the person that recorded a name change holds
    # the old name, which is as personal as the current one.
    earlier: set[str] = set()
    for data in AuditEntry.objects.filter(about).values_list("data", flat=True):
        earlier |= _values_of(data, personal_keys)
    clean_terms = tuple(
        sorted({t.strip() for t in [*terms, *earlier] if t and len(t.strip()) >= 3})
    )
    mentions = Q()
    for term in clean_terms:
        mentions |= Q(data__icontains=term) | Q(target_label__icontains=term)
    entries = (
        AuditEntry.objects.filter(about | mentions)
        if clean_terms
        else (AuditEntry.objects.filter(about))
    )
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_redact must run inside the erasing transaction")
    count = 0
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL switchboard.audit_redaction = 'on'")
    # About the person, any string holding a term is theirs; elsewhere only whole words
    # are, so a short name never erases unrelated text that happens to contain it.
    inside = _term_pattern(clean_terms, whole_words=False) if clean_terms else None
    elsewhere = _term_pattern(clean_terms, whole_words=True) if clean_terms else None
    try:
        for entry in entries.only("pk", "data", "target_label", "target_type", "target_id"):
            is_target = entry.target_type_id == target_type.pk and entry.target_id == str(target.pk)
            pattern = inside if is_target else elsewhere
            data = _scrub(entry.data, pattern) if pattern is not None else entry.data
            label = tombstone if is_target else _scrub(entry.target_label, pattern)
            if data != entry.data or label != entry.target_label:
                AuditEntry.objects.filter(pk=entry.pk).update(data=data, target_label=label)
                count += 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL switchboard.audit_redaction = 'off'")
    return count
