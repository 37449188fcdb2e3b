"""One alert module for every part of Switchboard.

``alert_raise(key=..., title=..., detail=...)`` opens an alert unless one with that key
is already open (de-duplicated), and delivers it after commit: an email to
``ALERT_EMAILS`` and the owners, and a post to ``SLACK_WEBHOOK_URL`` when set (an
outbox row, channel ``slack``, delivered and retried by crm_sync).
``alert_clear(key=...)`` marks it recovered. Alert text never holds secrets or card data:
it is masked like audit data.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import permissions
from audit.models import Alert, AlertState
from audit.services import mask_secrets
from config.queueing import enqueue_on_commit

logger = logging.getLogger(__name__)


def alert_raise(*, key: str, title: str, detail: str = "") -> Alert | None:
    """Open an alert for ``key``; returns None when one is already open."""
    title = mask_secrets(title)[:300]
    detail = mask_secrets(detail)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(key=key[:200], title=title, detail=detail)
    except IntegrityError:
        return None
    enqueue_on_commit("sync", "audit.alerts.alert_deliver_job", alert.pk)
    return alert


def alert_clear(*, key: str) -> int:
    """Mark the open alert for ``key`` recovered and send a "recovered" message after commit."""
    pks = list(Alert.objects.filter(key=key).exclude(state=AlertState.RECOVERED)
               .values_list("pk", flat=True))
    count = Alert.objects.filter(pk__in=pks).update(state=AlertState.RECOVERED,
                                                    cleared_at=timezone.now())
    for pk in pks:
        enqueue_on_commit("sync", "audit.alerts.alert_recovered_job", pk)
    return count


def _recipients() -> list[str]:
    owners = get_user_model().objects.filter(
        is_active=True, groups__name="owner").exclude(email="").values_list("email", flat=True)
    return sorted(set(settings.ALERT_EMAILS) | set(owners))


def alert_deliver_job(alert_pk: int) -> None:
    alert = Alert.objects.get(pk=alert_pk)
    if alert.delivered_at:
        return
    recipients = _recipients()
    if recipients:
        send_mail(f"[Switchboard] {alert.title}", alert.detail or alert.title,
                  settings.DEFAULT_FROM_EMAIL, recipients)
    _slack(alert, "alert", f":rotating_light: {alert.title}\n{alert.detail}")
    Alert.objects.filter(pk=alert_pk).update(delivered_at=timezone.now(), delivery_error="")


# --- recovery messages and acknowledgement -----------------------------------------------


def alert_recovered_job(alert_pk: int) -> None:
    """Tell the same people, by email and Slack, that the condition cleared."""
    alert = Alert.objects.get(pk=alert_pk)
    recipients = _recipients()
    if recipients:
        send_mail(f"[Switchboard] Recovered: {alert.title}",
                  f"The condition cleared at {alert.cleared_at:%Y-%m-%d %H:%M %Z}.\n\n{alert.title}",
                  settings.DEFAULT_FROM_EMAIL, recipients)
    _slack(alert, "recovered", f":white_check_mark: Recovered: {alert.title}")


def _slack(alert: Alert, kind: str, text: str) -> None:
    """Slack goes through the outbox (crm_sync): a Slack outage is retried like any other
    vendor. Alerts about the Slack channel itself are not posted to Slack (no loop)."""
    if settings.SLACK_WEBHOOK_URL and not alert.key.startswith("sync:slack:"):
        from crm_sync.outbox import outbox_write

        outbox_write(channel="slack", kind=kind, dedupe_key=f"slack:{kind}:{alert.pk}",
                     payload={"text": text})


def can_view_alerts(user: Any) -> bool:
    """Alerts carry finance details (reconcile drift, unconfirmed refunds, dead syncs):
    owners and finance admins only, wherever they are listed."""
    return bool(user.has_perm(permissions.VIEW_ALERT))


def can_acknowledge_alerts(user: Any) -> bool:
    """Whoever may see the alert list may say they are on it (owners, finance admins)."""
    return can_view_alerts(user)


def alert_acknowledge(*, actor: Any, alert_pk: int) -> bool:
    """A person says they are on it: the alert stays listed (and de-duplicated) until its
    condition clears. Audited. Returns False when the alert was not open."""
    from audit import codes
    from audit.services import audit_record

    if not can_acknowledge_alerts(actor):
        raise PermissionDenied("You may not acknowledge alerts.")
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_pk, state=AlertState.OPEN).first()
        if alert is None:
            return False
        alert.state = AlertState.ACKNOWLEDGED
        alert.acknowledged_by = actor
        alert.save(update_fields=["state", "acknowledged_by"])
        audit_record(action=codes.ALERT_ACKNOWLEDGED, actor=actor, target=alert,
                     data={"key": alert.key, "title": alert.title, "before": "open",
                           "after": "acknowledged"})
    return True
