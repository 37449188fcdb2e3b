"""Retention: what Switchboard keeps, and for how long (settings ``RETENTION_*``).

Run by ``manage.py run_scheduler`` every ``RETENTION_INTERVAL_MINUTES``; each app purges
its own rows in batches. A purge that removed anything is one system audit entry with
the counts. The audit log itself is never purged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import codes
from audit.services import audit_record
from billing.erasure import event_payloads_purge, handler_runs_purge
from delivery.outbox import outbox_purge


def retention_purge(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    batch = settings.RETENTION_BATCH_SIZE
    counts = {
        "outbox_rows": outbox_purge(
            older_than=now - timedelta(days=settings.RETENTION_OUTBOX_DAYS), batch_size=batch
        ),
        "handler_runs": handler_runs_purge(
            older_than=now - timedelta(days=settings.RETENTION_HANDLER_RUN_DAYS),
            batch_size=batch,
        ),
        "event_payloads": event_payloads_purge(
            older_than=now - timedelta(days=settings.RETENTION_EVENT_PAYLOAD_DAYS),
            batch_size=batch,
        ),
    }
    if any(counts.values()):
        with transaction.atomic():
            audit_record(action=codes.RETENTION_PURGED, data=dict(counts))
    return counts
