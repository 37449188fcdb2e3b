"""The built-in ``slack`` channel: staff alerts posted to ``SLACK_WEBHOOK_URL`` from the
outbox, so a Slack outage is retried like any other vendor instead of losing the alert."""

from __future__ import annotations

from django.conf import settings

from delivery import http
from delivery.errors import ConfigurationError
from delivery.models import OutboxMessage
from delivery.senders import Delivered

VENDOR = "slack"


def deliver_slack(message: OutboxMessage) -> Delivered:
    if not settings.SLACK_WEBHOOK_URL:
        raise ConfigurationError(
            "SLACK_WEBHOOK_URL is not set", user_message="no Slack webhook URL configured"
        )
    http.request(
        VENDOR,
        "POST",
        settings.SLACK_WEBHOOK_URL,
        headers={},
        payload={"text": message.payload.get("text", "")},
    )
    return Delivered("posted to Slack")
