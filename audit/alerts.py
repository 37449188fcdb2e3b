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

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

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
    return Alert.objects.filter(key=key).exclude(state=AlertState.RECOVERED).update(
        state=AlertState.RECOVERED, cleared_at=timezone.now())


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
    error = ""
    # Slack goes through the outbox (crm_sync): a Slack outage is retried like any other
    # vendor. Alerts about the Slack channel itself are not posted to Slack (no loop).
    if settings.SLACK_WEBHOOK_URL and not alert.key.startswith("sync:slack:"):
        from crm_sync.outbox import outbox_write

        outbox_write(channel="slack", kind="alert", dedupe_key=f"slack:alert:{alert.pk}",
                     payload={"text": f":rotating_light: {alert.title}\n{alert.detail}"})
    Alert.objects.filter(pk=alert_pk).update(delivered_at=timezone.now(), delivery_error=error)
