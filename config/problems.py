"""Problems that a person must hear about, reported by any app, alerted by the console.

The lower layers (billing's pipeline, delivery's outbox) know when something needs a
person — a handler run is dead, a vendor refuses our credentials — but they may not
import the console, which owns alerts, emails to owners and Slack posts. They report the
condition here instead; the console connects to these signals in its ``AppConfig.ready``
and opens or closes an alert in the same transaction (console/alerts.py). Without a
receiver a report is only logged.

``key`` names the condition, so a condition that persists is reported many times but
alerted once (``sync:crm:paused``, ``handler_dead:<run id>``).
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent with key, title and detail (plain strings).
problem_reported = Signal()
# Sent with key.
problem_resolved = Signal()


def report(*, key: str, title: str, detail: str = "") -> bool:
    """Tell whoever listens that ``key`` holds. True when a receiver opened a new alert
    (False when one was already open, or nobody listens)."""
    responses = problem_reported.send(sender=None, key=key, title=title, detail=detail)
    if not responses:
        logger.error("problem %s: %s", key, title)
    return any(bool(answer) for _, answer in responses)


def resolve(*, key: str) -> bool:
    """Tell whoever listens that ``key`` no longer holds. True when something was closed."""
    responses = problem_resolved.send(sender=None, key=key)
    return any(bool(answer) for _, answer in responses)
