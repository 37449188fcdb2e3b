"""Signal receivers: they only hand off to the audit service."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.dispatch import receiver

from audit import codes
from audit.services import audit_record


@receiver(user_locked_out, dispatch_uid="audit_axes_lockout")
def record_lockout(
    sender: Any,
    request: Any = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    audit_record(
        action=codes.AUTH_LOCKOUT,
        data={"username": username or "", "ip_address": ip_address or ""},
        ip_address=ip_address,
    )
