"""Alerts: conditions staff must know about, raised once, delivered through the outbox.

``alert_raise(key=..., title=..., detail=...)`` opens an alert unless one with that key
is already open (de-duplicated) and, in the same transaction, writes its deliveries to
the outbox: an email to ``ALERT_EMAILS`` and the owners, and a post to
``SLACK_WEBHOOK_URL`` when set. ``alert_clear(key=...)`` marks it recovered and sends a
"recovered" message the same way. The lower layers report conditions through
``config.problems`` (they may not import the console); console.apps connects those
reports to these two functions. Alert text never holds secrets or card data: it is
masked like audit data.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import codes
from audit.services import audit_record, mask_secrets
from console.models import Alert, AlertState
from console.permissions import VIEW_ALERT
from customers.roles import OWNER
from delivery.email import EMAIL, email_payload
from delivery.outbox import outbox_write
from delivery.senders import SLACK

logger = logging.getLogger(__name__)


def alert_raise(*, key: str, title: str, detail: str = "") -> Alert | None:
    """Open an alert for ``key``; returns None when one is already open."""
    title = mask_secrets(title)[:300]
    detail = mask_secrets(detail)
    with transaction.atomic():
        try:
            with transaction.atomic():
                alert = Alert.objects.create(key=key[:200], title=title, detail=detail)
        except IntegrityError:
            return None
        _send(
            alert,
            "alert",
            f"[Switchboard] {alert.title}",
            alert.detail or alert.title,
            f":rotating_light: {alert.title}\n{alert.detail}",
        )
        Alert.objects.filter(pk=alert.pk).update(delivered_at=timezone.now())
    return alert


def alert_clear(*, key: str) -> int:
    """Mark the open alert for ``key`` recovered and tell the same people."""
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update().filter(key=key).exclude(state=AlertState.RECOVERED)
        )
        now = timezone.now()
        for alert in alerts:
            Alert.objects.filter(pk=alert.pk).update(state=AlertState.RECOVERED, cleared_at=now)
            _send(
                alert,
                "recovered",
                f"[Switchboard] Recovered: {alert.title}",
                f"The condition cleared at {timezone.localtime(now):%Y-%m-%d %H:%M %Z}."
                f"\n\n{alert.title}",
                f":white_check_mark: Recovered: {alert.title}",
            )
    return len(alerts)


def _recipients() -> list[str]:
    owners = (
        get_user_model()
        .objects.filter(is_active=True, groups__name=OWNER)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    return sorted(set(settings.ALERT_EMAILS) | set(owners))


def _send(alert: Alert, kind: str, subject: str, body: str, slack_text: str) -> None:
    """The alert's email and Slack post, as outbox rows (one each per alert and kind).
    Alerts about the Slack channel itself are not posted to Slack (no loop)."""
    recipients = _recipients()
    if recipients:
        outbox_write(
            channel=EMAIL,
            kind=f"{kind}_email",
            dedupe_key=f"alert:{kind}:email:{alert.pk}",
            cause=f"alert:{alert.pk}",
            payload=email_payload(to=recipients, subject=subject, body=body),
        )
    if settings.SLACK_WEBHOOK_URL and not alert.key.startswith(f"sync:{SLACK}:"):
        outbox_write(
            channel=SLACK,
            kind=kind,
            dedupe_key=f"slack:{kind}:{alert.pk}",
            cause=f"alert:{alert.pk}",
            payload={"text": slack_text},
        )


def can_view_alerts(user: Any) -> bool:
    """Alerts carry finance details (reconcile drift, unconfirmed refunds, dead syncs):
    owners and finance admins only, wherever they are listed."""
    return bool(user.has_perm(VIEW_ALERT))


def can_acknowledge_alerts(user: Any) -> bool:
    """Whoever may see the alert list may say they are on it (owners, finance admins)."""
    return can_view_alerts(user)


def alert_acknowledge(*, actor: Any, alert_pk: int) -> bool:
    """A person says they are on it: the alert stays listed (and de-duplicated) until its
    condition clears. Audited. Returns False when the alert was not open."""
    if not can_acknowledge_alerts(actor):
        raise PermissionDenied("You may not acknowledge alerts.")
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_pk, state=AlertState.OPEN).first()
        if alert is None:
            return False
        alert.state = AlertState.ACKNOWLEDGED
        alert.acknowledged_by = actor
        alert.save(update_fields=["state", "acknowledged_by"])
        audit_record(
            action=codes.ALERT_ACKNOWLEDGED,
            actor=actor,
            target=alert,
            data={
                "key": alert.key,
                "title": alert.title,
                "before": "open",
                "after": "acknowledged",
            },
        )
    return True


# --- reports from the lower layers (config.problems) ----------------------------------------


def on_problem_reported(
    sender: Any, *, key: str, title: str, detail: str = "", **kwargs: Any
) -> bool:
    return alert_raise(key=key, title=title, detail=detail) is not None


def on_problem_resolved(sender: Any, *, key: str, **kwargs: Any) -> bool:
    return bool(alert_clear(key=key))
