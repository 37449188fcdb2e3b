"""Outbox services: write a row with the change that causes it, deliver it, sweep, retry.

Life of a row (delivery/models.py has the fields)::

    pending --claim--> delivering --ok--> delivered
       ^                   |--retryable--> failed --(due)--> delivering ...
       |                   |                  \\-- past SYNC_RETRY_HORIZON_HOURS --> dead (alert)
       |                   |--permanent----> dead (alert)
       |                   \\--configuration-> paused (one alert per channel)
       \\-- newer row, same coalesce_key, while waiting --> superseded

- ``outbox_write`` runs inside the caller's transaction (a handler run, a staff action):
  the row commits with the state change or not at all, and a drain job is signalled
  only after that commit (one job for a burst of rows: ``outbox_drain``). A second write with the same ``dedupe_key`` is a no-op, so a
  retried or replayed cause never sends twice.
- ``outbox_deliver`` (queue ``sync``) claims the row and commits the claim before the
  vendor is called, so no database lock is held during the HTTP call and a worker that
  dies mid-call leaves a ``delivering`` row the sweeper recognises as stuck.
- A configuration error pauses the whole channel: while any row of a channel is paused,
  other rows of that channel are parked as paused without calling the vendor (one
  request, one alert, no retry storm). The sweeper probes a paused channel every
  ``SYNC_PAUSE_PROBE_SECONDS``; the first success releases every paused row.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from audit import codes
from audit.context import bind
from audit.services import audit_record
from config import problems, retry
from config.locks import advisory_xact_lock
from config.queueing import (
    drain,
    enqueue_now,
    enqueue_on_commit,
    signal_work_on_commit,
)
from delivery.errors import ConfigurationError, DeliveryError, PermanentError, RetryableError
from delivery.models import OutboxMessage, OutboxState
from delivery.permissions import can_retry_outbox
from delivery.senders import channel_label, is_channel, sender_for
from delivery.signals import message_dead

logger = logging.getLogger(__name__)

DELIVER_JOB = "delivery.jobs.outbox_deliver_job"
# New rows are delivered by a drain job (one per burst, signalled like billing's).
DRAIN_JOB = "delivery.jobs.outbox_drain_job"
OUTBOX_SIGNAL = "delivery-outbox"
WAITING = (OutboxState.PENDING, OutboxState.FAILED, OutboxState.PAUSED)


def paused_alert_key(channel: str) -> str:
    return f"sync:{channel}:paused"


def dead_alert_key(message: OutboxMessage) -> str:
    return f"sync:{message.channel}:dead:{message.pk}"


# --- writing ----------------------------------------------------------------------------


def outbox_write(
    *,
    channel: str,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    customer: Any | None = None,
    cause: str = "",
    coalesce_key: str = "",
) -> tuple[OutboxMessage, bool]:
    """Record one outbound change in the current transaction. Returns (row, created).

    Payloads are built by code from named fields (ids, amounts, statuses, names), never
    from card data or credentials; they are not masked, so links and ids stay intact.

    Same ``dedupe_key`` again -> the existing row, nothing new is sent. With a
    ``coalesce_key``, older rows of that key still waiting are superseded: only the
    newest state is sent (a row already being delivered finishes; the new one follows).
    ``cause`` names what made the row, as plain text (``stripe_event:evt_…``).
    """
    if not is_channel(channel):
        raise ValueError(f"unknown outbox channel {channel!r}")
    # No savepoint of its own inside the caller's transaction (two round trips per row):
    # an error here propagates and rolls the caller back; only the duplicate needs one.
    with transaction.atomic(savepoint=False):
        try:
            with transaction.atomic():
                message = OutboxMessage.objects.create(
                    channel=channel,
                    kind=kind,
                    dedupe_key=dedupe_key[:255],
                    coalesce_key=coalesce_key[:255],
                    customer=customer,
                    cause=cause[:255],
                    payload=payload,
                )
        except IntegrityError:
            return OutboxMessage.objects.get(dedupe_key=dedupe_key[:255]), False
        if coalesce_key:
            # A newer state does not jump the queue of a vendor that is failing: it
            # inherits the retry time of the rows it replaces (no retry storm).
            held = _supersede_older(message)
            held_until = max(held, default=None)
            if held_until and held_until > message.next_attempt_at:
                message.next_attempt_at = held_until
                message.save(update_fields=["next_attempt_at", "updated_at"])
            if held:
                logger.info("outbox %s: superseded %s older row(s)", coalesce_key, len(held))
        signal_work_on_commit(
            OUTBOX_SIGNAL, "sync", DRAIN_JOB, ttl=settings.DRAIN_SIGNAL_TTL_SECONDS
        )
    return message, True


_SUPERSEDE = """
UPDATE {table} SET state = %s, outcome = %s, updated_at = %s
WHERE coalesce_key = %s AND state = ANY(%s) AND id < %s
RETURNING next_attempt_at
"""


def _supersede_older(message: OutboxMessage) -> list[datetime]:
    """Mark the waiting rows of ``message``'s coalesce key older than it superseded, in one
    statement; returns their retry times."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SUPERSEDE.format(table=OutboxMessage._meta.db_table),
            [
                OutboxState.SUPERSEDED,
                f"superseded by #{message.pk}",
                timezone.now(),
                message.coalesce_key,
                list(WAITING),
                message.pk,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


# --- delivering -------------------------------------------------------------------------


def channel_paused(channel: str) -> bool:
    return OutboxMessage.objects.filter(channel=channel, state=OutboxState.PAUSED).exists()


def _claim(message_pk: int) -> OutboxMessage | None:
    now = timezone.now()
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True).filter(pk=message_pk).first()
        )
        if (
            message is None
            or message.state not in (OutboxState.PENDING, OutboxState.FAILED)
            or message.next_attempt_at > now
        ):
            return None
        if message.coalesce_key:
            # Claims of rows for one contact/ticket are serialised.
            advisory_xact_lock(f"outbox:{message.coalesce_key}")
            same_key = OutboxMessage.objects.filter(coalesce_key=message.coalesce_key).exclude(
                pk=message.pk
            )
            if same_key.filter(state__in=WAITING, pk__gt=message.pk).exists():
                message.state = OutboxState.SUPERSEDED
                message.outcome = "superseded by a newer update"
                message.save(update_fields=["state", "outcome", "updated_at"])
                return None
            if same_key.filter(state=OutboxState.DELIVERING).exists():
                # One delivery per contact at a time: two concurrent upserts could both
                # miss the contact and create it twice. The sweeper picks this up.
                message.next_attempt_at = now + timedelta(seconds=2)
                message.save(update_fields=["next_attempt_at", "updated_at"])
                return None
        if channel_paused(message.channel):
            message.state = OutboxState.PAUSED
            message.outcome = "channel paused (configuration problem); not sent"
            message.next_attempt_at = now + timedelta(seconds=settings.SYNC_PAUSE_PROBE_SECONDS)
            message.save(update_fields=["state", "outcome", "next_attempt_at", "updated_at"])
            return None
        message.state = OutboxState.DELIVERING
        message.attempts += 1
        message.save(update_fields=["state", "attempts", "updated_at"])
    return message


def backoff(attempts: int) -> timedelta:
    return retry.backoff(
        attempts, base=settings.SYNC_BACKOFF_BASE_SECONDS, cap=settings.SYNC_BACKOFF_MAX_SECONDS
    )


def outbox_deliver(*, message_pk: int) -> str | None:
    """Claim one due row, deliver it through its channel's sender, record the outcome.
    Returns the new state, or None when there was nothing to do."""
    message = _claim(message_pk)
    if message is None:
        return None
    with bind(request_id=f"outbox-{message.pk}"):
        try:
            result = sender_for(message.channel)(message)
        except ConfigurationError as exc:
            return _record_paused(message, exc)
        except PermanentError as exc:
            return _record_dead(message, exc.developer_message, exc.user_message)
        except RetryableError as exc:
            return _record_retry(message, exc.developer_message, exc.retry_after)
        except DeliveryError as exc:
            return _record_retry(message, exc.developer_message, None)
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is retried, never lost
            logger.exception("outbox %s: sender failed unexpectedly", message.pk)
            return _record_retry(message, f"{exc.__class__.__name__}: {exc}", None)
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=OutboxState.DELIVERED,
        delivered_at=timezone.now(),
        last_error="",
        outcome=result.outcome[:300],
        external_id=result.external_id[:255],
        updated_at=timezone.now(),
    )
    problems.resolve(key=paused_alert_key(message.channel))
    if channel_paused(message.channel):
        # The vendor accepts us again (a console retry went through): release the rest.
        for pk in _release_paused(message.channel, timezone.now()):
            enqueue_now("sync", DELIVER_JOB, pk)
    return OutboxState.DELIVERED


def outbox_drain(*, max_seconds: float | None = None) -> int:
    """The drain job of new rows: deliver due rows, oldest first, in batches of
    ``DRAIN_BATCH_SIZE``, each claimed and recorded alone by :func:`outbox_deliver` (so
    coalescing, per-contact serialisation, pauses and rate limits work as for one row).
    It ends when nothing is due, stops changing, or ``DRAIN_MAX_SECONDS`` have passed
    (then a fresh job takes over), and steps aside when an events drain waits. Rows a
    vendor deferred (Retry-After, backoff) are not due: the sweeper sends them later.

    Batching stops at the job: every vendor still gets one request per row, because
    the senders' per-row semantics (HubSpot's search-then-upsert per contact, Zendesk's
    one ticket per situation, one email per message) are what make a retry safe.
    Returns the number of rows it tried."""
    previous: list[int] = []

    def batch() -> int:
        pks = list(
            OutboxMessage.objects.filter(
                state__in=[OutboxState.PENDING, OutboxState.FAILED],
                next_attempt_at__lte=timezone.now(),
            )
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[: settings.DRAIN_BATCH_SIZE]
        )
        if not pks or pks == previous:
            return 0  # nothing due, or only rows another worker holds right now
        for pk in pks:
            outbox_deliver(message_pk=pk)
        previous[:] = pks
        return len(pks)

    return drain(
        OUTBOX_SIGNAL, "sync", DRAIN_JOB, batch, max_seconds=max_seconds, step_aside_for="webhooks"
    )


def _record_retry(message: OutboxMessage, error: str, retry_after: float | None) -> str:
    now = timezone.now()
    horizon = timedelta(hours=settings.SYNC_RETRY_HORIZON_HOURS)
    if now - message.created_at >= horizon:
        return _record_dead(
            message,
            f"gave up after {message.attempts} attempts over "
            f"{settings.SYNC_RETRY_HORIZON_HOURS} h; last error: {error}",
            "the vendor kept failing",
        )
    if retry_after is not None:
        # The vendor's own word: not before Retry-After (a little jitter after it).
        delay = timedelta(seconds=retry_after * random.uniform(1.0, 1.1))
    else:
        delay = backoff(message.attempts)
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=OutboxState.FAILED,
        last_error=error[:2000],
        next_attempt_at=now + delay,
        outcome=f"attempt {message.attempts} failed; retry in {delay.total_seconds():.0f}s",
        updated_at=now,
    )
    logger.warning(
        "outbox %s (%s) attempt %s failed: %s",
        message.pk,
        message.kind,
        message.attempts,
        error[:200],
    )
    return OutboxState.FAILED


def _record_dead(message: OutboxMessage, error: str, user_message: str) -> str:
    label = channel_label(message.channel)
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.DEAD,
            last_error=error[:2000],
            outcome=f"dead: {user_message}"[:300],
            updated_at=timezone.now(),
        )
        problems.report(
            key=dead_alert_key(message),
            title=f"{label} delivery failed for good: {message.kind} ({message.dedupe_key})",
            detail=f"Outbox row #{message.pk}, {message.attempts} attempt(s). "
            f"{user_message}. Last error: {error}. Retry it from "
            "Admin -> Outbox messages once the cause is fixed.",
        )
        # The channel's owner decides what else a dead row means (support opens a
        # review ticket for the customer), in this same transaction.
        message_dead.send(
            sender=OutboxMessage,
            message_id=message.pk,
            channel=message.channel,
            kind=message.kind,
            customer_id=message.customer_id,
            reason=f"{label} update '{message.kind}' failed for good: {user_message}",
        )
    logger.error("outbox %s (%s) is dead: %s", message.pk, message.kind, error[:200])
    return OutboxState.DEAD


def _record_paused(message: OutboxMessage, exc: ConfigurationError) -> str:
    now = timezone.now()
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.PAUSED,
            last_error=exc.developer_message[:2000],
            outcome=f"paused: {exc.user_message}"[:300],
            next_attempt_at=now + timedelta(seconds=settings.SYNC_PAUSE_PROBE_SECONDS),
            updated_at=now,
        )
        problems.report(
            key=paused_alert_key(message.channel),
            title=f"{channel_label(message.channel)} delivery paused: {exc.user_message}",
            detail=f"{exc.developer_message}. Nothing is lost: rows wait as 'paused' "
            f"and are tried again every {settings.SYNC_PAUSE_PROBE_SECONDS}s, "
            "or retried from Admin -> Outbox messages once the setting is "
            "fixed.",
        )
    logger.error("outbox channel %s paused: %s", message.channel, exc.developer_message)
    return OutboxState.PAUSED


# --- sweeping and retrying --------------------------------------------------------------


def _release_paused(channel: str, now: datetime) -> list[int]:
    rows = OutboxMessage.objects.filter(channel=channel, state=OutboxState.PAUSED)
    released = list(rows.order_by("pk").values_list("pk", flat=True))
    OutboxMessage.objects.filter(pk__in=released).update(
        state=OutboxState.PENDING, next_attempt_at=now, updated_at=now
    )
    return released


def outbox_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue outbox work that has no job (called by ``manage.py run_scheduler``).

    Rows stuck in ``delivering`` (a dead worker) become failed and due; due failed rows
    and pending rows older than ``SWEEP_EVENT_DELAY_SECONDS`` are enqueued; a paused
    channel whose probe time has come is released. Enqueueing twice is harmless: a
    delivery claims its row with SKIP LOCKED and checks its state.
    """
    now = now or timezone.now()
    counts = {"outbox_stuck": 0, "outbox_due": 0, "outbox_released": 0}
    stuck_cutoff = now - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS)
    with transaction.atomic():
        stuck = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(state=OutboxState.DELIVERING, updated_at__lte=stuck_cutoff)
            .values_list("pk", flat=True)
        )
        OutboxMessage.objects.filter(pk__in=stuck).update(
            state=OutboxState.FAILED,
            next_attempt_at=now,
            last_error="worker lost: the delivery never finished",
            updated_at=now,
        )
        counts["outbox_stuck"] = len(stuck)

    released: list[int] = []
    for channel, first_probe in (
        OutboxMessage.objects.filter(state=OutboxState.PAUSED)
        .order_by()
        .values_list("channel")
        .annotate(first=Min("next_attempt_at"))
    ):
        if first_probe <= now:
            released += _release_paused(channel, now)
    counts["outbox_released"] = len(released)

    # Pending rows have a job from their write unless it was lost: only those untouched
    # for SWEEP_EVENT_DELAY_SECONDS are enqueued again.
    pending_cutoff = now - timedelta(seconds=settings.SWEEP_EVENT_DELAY_SECONDS)
    due = (
        OutboxMessage.objects.filter(state=OutboxState.FAILED, next_attempt_at__lte=now)
        | OutboxMessage.objects.filter(
            state=OutboxState.PENDING, next_attempt_at__lte=now, updated_at__lte=pending_cutoff
        )
        | OutboxMessage.objects.filter(pk__in=released)
    )
    for pk in due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:1000]:
        counts["outbox_due"] += enqueue_now("sync", DELIVER_JOB, pk)
    return counts


def outbox_retry(*, actor: Any, message_pks: list[int], reason: str = "") -> int:
    """Give dead, paused or failed rows a fresh start (console action, audited).

    A retried row gets a fresh retry horizon but keeps its attempt count: an earlier
    attempt may have reached the vendor before its answer was lost (a ticket created,
    then a timeout), and senders look for that record when ``attempts`` says there was
    one. Retrying a paused row releases the whole channel: the first delivery probes the
    vendor; if it still refuses, the others are parked again without a request.
    """
    if not can_retry_outbox(actor):
        raise PermissionDenied("You may not retry outbox messages.")
    now = timezone.now()
    count = 0
    paused_channels: set[str] = set()
    with transaction.atomic():
        for message in OutboxMessage.objects.select_for_update().filter(
            pk__in=message_pks, state__in=[OutboxState.DEAD, OutboxState.PAUSED, OutboxState.FAILED]
        ):
            before = message.state
            message.state = OutboxState.PENDING
            message.next_attempt_at = now
            message.created_at = now  # the retry horizon starts again
            message.save(update_fields=["state", "next_attempt_at", "created_at", "updated_at"])
            if before == OutboxState.PAUSED:
                paused_channels.add(message.channel)
            audit_record(
                action=codes.SYNC_OUTBOX_RETRIED,
                actor=actor,
                target=message,
                data={
                    "channel": message.channel,
                    "kind": message.kind,
                    "dedupe_key": message.dedupe_key,
                    "before": before,
                    "after": OutboxState.PENDING,
                    "reason": reason,
                },
            )
            enqueue_on_commit("sync", DELIVER_JOB, message.pk)
            count += 1
        # The channel's other paused rows follow: the first delivery probes the vendor;
        # if it still refuses, the rest are parked again without a request.
        for channel in paused_channels:
            for pk in _release_paused(channel, now):
                enqueue_on_commit("sync", DELIVER_JOB, pk)
    return count


def outbox_scrub_customer(sender: Any, *, customer_id: Any, **kwargs: Any) -> None:
    """Receiver of ``customers.signals.customer_erasing``: the customer's rows lose their
    payloads, and those still waiting are never sent (an old contact update would put the
    person's data back at the vendor). Rows the erasure itself writes carry no customer."""
    now = timezone.now()
    rows = OutboxMessage.objects.filter(customer_id=customer_id)
    rows.filter(state__in=[*WAITING, OutboxState.DELIVERING]).update(
        state=OutboxState.SUPERSEDED,
        outcome="not sent: the customer's data was erased",
        updated_at=now,
    )
    rows.update(payload={"erased": True}, last_error="", updated_at=now)


def outbox_purge(*, older_than: datetime, batch_size: int, max_batches: int = 50) -> int:
    """Delete delivered and superseded rows created before ``older_than``, in batches of
    ``batch_size`` (short transactions: the outbox keeps taking writes meanwhile). Dead,
    paused and waiting rows are never purged. Returns rows deleted."""
    deleted = 0
    for _ in range(max_batches):
        pks = list(
            OutboxMessage.objects.filter(
                state__in=[OutboxState.DELIVERED, OutboxState.SUPERSEDED],
                created_at__lt=older_than,
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not pks:
            break
        deleted += OutboxMessage.objects.filter(pk__in=pks).delete()[0]
    return deleted
