"""Every write of the Stripe event pipeline: ingest, process, run handlers, sweep, replay.

Ingest is the hot path (the webhook request): one INSERT .. ON CONFLICT and, when the
row is new, one job enqueued after commit. It never calls Stripe and never processes.

Processing (queue ``webhooks``) turns an event into handler runs named by the status
map and runs them. Each run is claimed, executed and recorded in its own transaction,
so a failed run is retried alone and a succeeded one never runs again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit import codes
from audit.context import bind, note_stripe_event
from audit.services import audit_record
from billing import shapes, status_map
from billing.adapters import stripe_client
from billing.models import EventStatus, HandlerRun, RunStatus, StripeEvent
from billing.projection import stripe_customer_id_of, ts
from config import problems
from config.queueing import enqueue_now, enqueue_on_commit
from config.retry import backoff
from customers.permissions import REPLAY_EVENTS

logger = logging.getLogger(__name__)


class UnusableEnvelope(ValueError):
    """A signed body that is JSON but not a usable Stripe event envelope."""


# The newest `created` a real event can carry (9999-12-31): anything larger overflows a
# datetime, and Stripe never sends it.
_MAX_CREATED = 253402214400


def _storable_text(value: Any) -> bool:
    """A string PostgreSQL can store: valid UTF-8 (no lone surrogates from a ``\\ud800``
    escape) and no NUL character."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _optional_text(value: Any) -> bool:
    return value is None or _storable_text(value)


def _object_problems(obj: dict[str, Any]) -> list[str]:
    """Fields of ``data.object`` the envelope columns read, each a string (or absent) as
    Stripe sends them; a number or an object in their place is not a Stripe event."""
    problems = [
        f"data.object.{name}" for name in ("object", "id") if not _optional_text(obj.get(name))
    ]
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if not _optional_text(customer):
        problems.append("data.object.customer")
    return problems


def _envelope_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """Columns of a StripeEvent from a parsed event; raises UnusableEnvelope.

    Every value is checked for type and range before it reaches a column: a signed body
    with a number where Stripe sends a string, a lone surrogate in an id or a `created`
    past year 9999 is unusable (kept for a person), never a server error."""
    event_id = payload.get("id")
    event_type = payload.get("type")
    created = payload.get("created")
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    problems = []
    if not _storable_text(event_id) or not event_id.startswith("evt_") or len(event_id) > 255:
        problems.append("id")
    if not _storable_text(event_type) or not event_type or len(event_type) > 100:
        problems.append("type")
    if (
        isinstance(created, bool)
        or not isinstance(created, int)
        or not 0 <= created <= _MAX_CREATED
    ):
        problems.append("created")
    if not isinstance(obj, dict):
        problems.append("data.object")
    else:
        problems += _object_problems(obj)
    if not _optional_text(payload.get("api_version")):
        problems.append("api_version")
    if problems:
        raise UnusableEnvelope("missing or invalid: " + ", ".join(problems))
    return {
        "stripe_id": event_id,
        "type": event_type,
        "created": ts(created),
        "livemode": bool(payload.get("livemode")),
        "api_version": str(payload.get("api_version") or "")[:64],
        "object_type": str(obj.get("object") or "")[:64],
        "object_id": str(obj.get("id") or "")[:255],
        "stripe_customer_id": stripe_customer_id_of(obj)[:255],
    }


def _thin_envelope_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """Columns of a StripeEvent from a thin event (``object: v2.core.event``, from an event
    destination): it names the object it is about (``related_object``) and carries no
    snapshot and no API version; the job fetches the object. Raises UnusableEnvelope."""
    event_id, event_type = payload.get("id"), payload.get("type")
    created = shapes.thin_created(payload.get("created"))
    related_type, related_id = shapes.thin_related(payload)
    problems = []
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        problems.append("id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        problems.append("type")
    if created is None:
        problems.append("created")
    if problems:
        raise UnusableEnvelope("missing or invalid: " + ", ".join(problems))
    return {
        "stripe_id": event_id,
        "type": event_type,
        "created": created,
        "livemode": bool(payload.get("livemode")),
        "api_version": "",
        "object_type": related_type[:64],
        "object_id": related_id[:255],
        "stripe_customer_id": related_id if related_type == "customer" else "",
    }


_INSERT = """
INSERT INTO billing_stripeevent
    (stripe_id, type, created, livemode, api_version, object_type, object_id,
     stripe_customer_id, payload, status, received_at, delivery_count, attempts, last_error)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, 'received', %s, 1, 0, '')
ON CONFLICT (stripe_id) DO UPDATE
    SET delivery_count = billing_stripeevent.delivery_count + 1
RETURNING id, (xmax = 0) AS inserted
"""


def event_ingest(*, payload: dict[str, Any], body: str) -> tuple[int, bool]:
    """Store one verified delivery. Returns (row id, whether it was new).

    A second delivery of the same Stripe event only bumps ``delivery_count`` (the unique
    constraint on ``stripe_id`` decides, so two concurrent deliveries make one row). A
    new row's processing job is enqueued after the row commits, so a worker can never
    read an event that is not committed. If Redis is down the row stays ``received``
    and the sweeper enqueues it later.
    """
    fields = (_thin_envelope_fields if shapes.is_thin(payload) else _envelope_fields)(payload)
    # One statement, so no explicit transaction: in autocommit it is committed when it
    # returns (BEGIN and COMMIT would be two more round trips on the hot path), and
    # enqueue_on_commit then sends the job at once; inside a caller's transaction it
    # waits for that commit as usual.
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            [
                fields["stripe_id"],
                fields["type"],
                fields["created"],
                fields["livemode"],
                fields["api_version"],
                fields["object_type"],
                fields["object_id"],
                fields["stripe_customer_id"],
                body,
                timezone.now(),
            ],
        )
        row_id, inserted = cursor.fetchone()
    if inserted:
        enqueue_on_commit("webhooks", "billing.jobs.process_event_job", row_id)
    return row_id, inserted


def event_record_unusable(*, payload: Any, reason: str) -> StripeEvent:
    """Keep a signed but unusable envelope for a person to look at; it is never processed."""
    payload_dict = payload if isinstance(payload, dict) else {"body": payload}
    return StripeEvent.objects.create(
        stripe_id=None,
        type=str(payload_dict.get("type") or "")[:100]
        if isinstance(payload_dict.get("type"), str)
        else "",
        payload=payload_dict,
        status=EventStatus.UNUSABLE,
        last_error=reason[:1000],
    )


# --- processing -----------------------------------------------------------------------


# Follow-up handler runs (dj-stripe mirror, CRM, helpdesk, notification) wait on a queue
# that workers take after ``webhooks`` (``rqworker webhooks sync default``): under a burst,
# every event's customer projection runs before the slower follow-ups of earlier events.
FOLLOW_UP_QUEUE = "default"


def event_process(*, event_pk: int) -> bool:
    """Create the event's handler runs (once), run the customer projection now and
    enqueue the other due runs on ``FOLLOW_UP_QUEUE``, as one job (they still succeed or
    fail one by one; a failed run is retried alone by the sweeper).

    Safe to call any number of times for one event, concurrently too: the event row is
    locked (``SKIP LOCKED``: a second worker just leaves) and runs are unique per handler.
    Returns False when another worker holds the event.
    """
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update(skip_locked=True).filter(pk=event_pk).first()
        if event is None or event.status == EventStatus.UNUSABLE:
            return False
        note_stripe_event(event.stripe_id or "")
        if event.status != EventStatus.PROCESSED:
            event.attempts += 1
            if not _thin_object_fetch(event):
                return True
            names = status_map.handlers_for(event.type)
            HandlerRun.objects.bulk_create(
                [HandlerRun(event=event, handler=name) for name in names],
                ignore_conflicts=True,
            )
            event.status = EventStatus.PROCESSED
            event.processed_at = timezone.now()
            event.last_error = ""
            event.save(update_fields=["attempts", "status", "processed_at", "last_error"])
        # Claimed in the same transaction (one commit fewer on the hot path).
        due = _due_runs().filter(event_id=event_pk)
        projection = _claim(due.filter(handler=status_map.PROJECTION))
        follow_ups = list(
            due.exclude(handler=status_map.PROJECTION).order_by("id").values_list("pk", flat=True)
        )
    if projection is not None:
        projection.event = event
        _execute_claimed(projection)
    if follow_ups:
        enqueue_now(FOLLOW_UP_QUEUE, "billing.jobs.handler_runs_job", follow_ups)
    return True


def _thin_object_fetch(event: StripeEvent) -> bool:
    """A thin event's object, fetched once (through the billing adapter) and kept in
    ``resolved["object"]``, so every handler run then reads it like a snapshot event's.
    Returns False when Stripe could not be asked: the event is left ``failed`` for the
    sweeper to retry, and a person is alerted once it has failed
    ``HANDLER_MAX_ATTEMPTS`` times. Call with the event row locked."""
    if not event.is_thin or (event.resolved or {}).get("object"):
        return True
    related_type, related_id = shapes.thin_related(event.payload)
    if status_map.rule_for(event.type) is None or not related_id:
        return True  # fans out into nothing: there is nothing to fetch it for
    try:
        obj = stripe_client.retrieve(related_type, related_id)
    except (stripe_client.StripeUnavailable, ValueError) as exc:
        event.status = EventStatus.FAILED
        event.last_error = f"fetching the thin event's {related_type} {related_id}: {exc}"[:1000]
        event.save(update_fields=["attempts", "status", "last_error"])
        if event.attempts >= settings.HANDLER_MAX_ATTEMPTS:
            problems.report(
                key=f"thin_event_fetch:{event.pk}",
                title=f"Stripe event {event.stripe_id}: its {related_type} cannot be fetched",
                detail=event.last_error,
            )
        return False
    event.resolved = {**(event.resolved or {}), "object": obj}
    event.stripe_customer_id = shapes.customer_id(obj)[:255] or event.stripe_customer_id
    event.save(update_fields=["resolved", "stripe_customer_id"])
    if event.attempts > 1:
        problems.resolve(key=f"thin_event_fetch:{event.pk}")
    return True


def _due_runs() -> QuerySet[HandlerRun]:
    return HandlerRun.objects.filter(
        status__in=[RunStatus.PENDING, RunStatus.FAILED], next_attempt_at__lte=timezone.now()
    )


def _claim(runs: QuerySet[HandlerRun]) -> HandlerRun | None:
    """Lock the first due run of ``runs`` (skipping one another worker holds) and mark it
    started. Call inside a transaction; the claim commits with it."""
    # of=("self",): lock the run only, not the event a select_related joins in, so runs
    # of one event are claimed by several workers at once.
    run = runs.select_for_update(skip_locked=True, of=("self",)).first()
    if run is None:
        return None
    run.status = RunStatus.STARTED
    run.attempts += 1
    run.started_at = timezone.now()
    run.save(update_fields=["status", "attempts", "started_at"])
    return run


def _backoff(attempts: int) -> timedelta:
    return backoff(
        attempts,
        base=settings.HANDLER_BACKOFF_BASE_SECONDS,
        cap=settings.HANDLER_BACKOFF_MAX_SECONDS,
    )


def handler_run_execute(*, run_pk: int) -> str | None:
    """Claim one due run, execute its handler, record the outcome. Returns the new status.

    Claiming (pending/failed -> started) commits before the handler runs, so a worker
    that dies mid-handler leaves a ``started`` run the sweeper recognises as stuck.
    """
    with transaction.atomic():
        run = _claim(
            HandlerRun.objects.select_related("event").filter(
                pk=run_pk, status__in=[RunStatus.PENDING, RunStatus.FAILED]
            )
        )
    if run is None:
        return None
    note_stripe_event(run.event.stripe_id or "")
    return _execute_claimed(run)


def _execute_claimed(run: HandlerRun) -> str:
    """Run a claimed run's handler and record the outcome (its own transaction)."""
    from billing.handlers import handle

    event = run.event
    with bind(
        request_id=event.stripe_id or f"event-{event.pk}", stripe_event_id=event.stripe_id or ""
    ):
        try:
            # The handler's writes and "succeeded" commit together: a worker dying in
            # between cannot leave an applied effect marked as still running.
            with transaction.atomic():
                outcome = handle(run.handler, event)
                HandlerRun.objects.filter(pk=run.pk).update(
                    status=RunStatus.SUCCEEDED,
                    finished_at=timezone.now(),
                    note=outcome.note[:300],
                    last_error="",
                    changes=outcome.changes,
                )
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none is lost
            logger.warning(
                "handler %s failed for %s (attempt %s): %s",
                run.handler,
                event.stripe_id,
                run.attempts,
                exc.__class__.__name__,
            )
            return _record_failure(run, exc)
    return RunStatus.SUCCEEDED


def _record_failure(run: HandlerRun, exc: BaseException) -> str:
    error = f"{exc.__class__.__name__}: {exc}"[:2000]
    now = timezone.now()
    if run.attempts >= settings.HANDLER_MAX_ATTEMPTS:
        with transaction.atomic():
            HandlerRun.objects.filter(pk=run.pk).update(
                status=RunStatus.DEAD, last_error=error, finished_at=now
            )
            problems.report(
                key=f"handler_dead:{run.pk}",
                title=f"Handler {run.handler} is dead for Stripe event {run.event.stripe_id}",
                detail=f"{run.attempts} attempts; last error: {error}",
            )
        return RunStatus.DEAD
    HandlerRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, last_error=error, next_attempt_at=now + _backoff(run.attempts)
    )
    return RunStatus.FAILED


# --- sweeping -------------------------------------------------------------------------


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue work that has no job: unprocessed events, due runs, stuck runs.

    Runs every ``SWEEP_INTERVAL_SECONDS`` from ``manage.py run_scheduler``. Enqueueing
    twice is harmless (processing is idempotent and claims rows with SKIP LOCKED).
    """
    now = now or timezone.now()
    counts = {"events": 0, "runs": 0, "stuck": 0}
    event_cutoff = now - timedelta(seconds=settings.SWEEP_EVENT_DELAY_SECONDS)
    for pk in (
        StripeEvent.objects.filter(
            status__in=[EventStatus.RECEIVED, EventStatus.FAILED],
            received_at__lte=event_cutoff,
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:1000]
    ):
        counts["events"] += enqueue_now("webhooks", "billing.jobs.process_event_job", pk)

    stuck_cutoff = now - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS)
    with transaction.atomic():
        stuck = list(
            HandlerRun.objects.select_for_update(skip_locked=True).filter(
                status=RunStatus.STARTED, started_at__lte=stuck_cutoff
            )
        )
        for run in stuck:
            run.status = RunStatus.FAILED
            run.last_error = f"worker lost: started at {run.started_at:%H:%M:%S} and never finished"
            run.next_attempt_at = now
            run.save(update_fields=["status", "last_error", "next_attempt_at"])
        counts["stuck"] = len(stuck)

    for pk in (
        HandlerRun.objects.filter(
            status__in=[RunStatus.PENDING, RunStatus.FAILED],
            next_attempt_at__lte=now,
            event__status=EventStatus.PROCESSED,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    ):
        counts["runs"] += enqueue_now(FOLLOW_UP_QUEUE, "billing.jobs.handler_run_job", pk)
    return counts


# --- replay ---------------------------------------------------------------------------


def _can_replay(actor: Any | None) -> bool:
    return actor is None or actor.has_perm(REPLAY_EVENTS)


def events_replay(*, actor: Any | None, event_pks: list[int], reason: str = "") -> int:
    """Process the given events again. Effects are not duplicated: runs that succeeded
    are not re-run; failed or dead ones are reset to pending and run again."""
    if not _can_replay(actor):
        raise PermissionDenied("You may not replay Stripe events.")
    count = 0
    for pk in event_pks:
        with transaction.atomic():
            event = (
                StripeEvent.objects.select_for_update()
                .filter(pk=pk)
                .exclude(status=EventStatus.UNUSABLE)
                .first()
            )
            if event is None:
                continue
            if event.status == EventStatus.FAILED:
                event.status = EventStatus.RECEIVED
                event.save(update_fields=["status"])
            HandlerRun.objects.filter(
                event=event, status__in=[RunStatus.FAILED, RunStatus.DEAD]
            ).update(status=RunStatus.PENDING, next_attempt_at=timezone.now())
            audit_record(
                action=codes.BILLING_EVENT_REPLAYED,
                actor=actor,
                target=event,
                data={"stripe_event_id": event.stripe_id, "type": event.type, "reason": reason},
            )
            enqueue_on_commit("webhooks", "billing.jobs.process_event_job", event.pk)
            count += 1
    return count


def handler_runs_replay(*, actor: Any | None, run_pks: list[int], reason: str = "") -> int:
    """Give dead (or failed) handler runs a fresh start."""
    if not _can_replay(actor):
        raise PermissionDenied("You may not replay handler runs.")
    count = 0
    with transaction.atomic():
        for run in (
            HandlerRun.objects.select_for_update()
            .select_related("event")
            .filter(pk__in=run_pks, status__in=[RunStatus.DEAD, RunStatus.FAILED])
        ):
            before = run.status
            run.status = RunStatus.PENDING
            run.attempts = 0
            run.next_attempt_at = timezone.now()
            run.save(update_fields=["status", "attempts", "next_attempt_at"])
            audit_record(
                action=codes.BILLING_HANDLER_REPLAYED,
                actor=actor,
                target=run.event,
                data={
                    "handler": run.handler,
                    "before": before,
                    "after": "pending",
                    "stripe_event_id": run.event.stripe_id,
                    "reason": reason,
                },
            )
            enqueue_on_commit(FOLLOW_UP_QUEUE, "billing.jobs.handler_run_job", run.pk)
            count += 1
    return count
