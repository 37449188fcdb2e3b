"""Every write of the Stripe event pipeline: ingest, drain, run handlers, sweep, replay.

The events table is the queue. Ingest is the hot path (the webhook request): one
INSERT .. ON CONFLICT and, when the row is new, at most one cheap signal that work exists
(a Redis SET NX; a drain job is enqueued only when none is pending). It never calls
Stripe and never processes.

Draining (queue ``webhooks``): a drain job claims up to ``DRAIN_BATCH_SIZE`` received
events in one statement (``FOR UPDATE SKIP LOCKED``, so any number of workers share the
table through PostgreSQL alone), groups them by customer and processes each customer's
events in Stripe's ``created`` order: the event's handler runs are created and its
customer projection run. A claim carries a visibility timeout (``claimed_until``): a
worker that dies holding it leaves events that the next drain takes again. Follow-up
handler runs (mirror, CRM, helpdesk, notifications) are drained the same way on
``FOLLOW_UP_QUEUE``, batched per subscriber. Each run is claimed, executed and recorded
in its own transaction, so a failed run is retried alone and a succeeded one never runs
again.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from audit import codes
from audit.context import bind, note_stripe_event
from audit.services import audit_record
from billing import shapes, status_map
from billing.adapters import stripe_client
from billing.events import BillingEvent
from billing.models import (
    ActionState,
    EventStatus,
    FinanceAction,
    HandlerRun,
    RunStatus,
    StripeEvent,
)
from billing.orders import ORDER_EVENTS
from billing.projection import Snapshot, project_known, stripe_customer_id_of, ts
from config import problems
from config.queueing import (
    drain,
    enqueue_now,
    enqueue_on_commit,
    queue_waiting,
    signal_work,
    signal_work_on_commit,
)
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


def _insert_event(params: list[Any]) -> tuple[int, bool]:
    """Run ``_INSERT`` on a cursor that binds parameters on the server.

    Django's own cursors bind on the client: PostgreSQL would parse and plan this upsert
    on every webhook, and Python would quote the whole body into the SQL text. Bound on
    the server it is prepared at its first run on a connection (``prepare_threshold``,
    set in config/settings.py unless ``WEBHOOK_INSERT_PREPARED`` is off), and a 4 KB event
    cost 240 µs of PostgreSQL CPU instead of 380, and 170 µs of Python instead of 200.
    Otherwise it is an ordinary Django cursor on Django's connection, opened as
    ``connection.cursor()`` opens one: health check, reconnect, the caller's transaction,
    execute wrappers, query logging and Django's database errors as for any query."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection._prepare_cursor(ServerBindingCursor(connection.connection)) as cursor:
        cursor.execute(_INSERT, params)
        return cursor.fetchone()


def event_ingest(*, payload: dict[str, Any], body: str) -> tuple[int, bool]:
    """Store one verified delivery. Returns (row id, whether it was new).

    A second delivery of the same Stripe event only bumps ``delivery_count`` (the unique
    constraint on ``stripe_id`` decides, so two concurrent deliveries make one row). A
    new row signals the drain after it commits, so a worker can never miss an event that
    is committed. If Redis is down the row stays ``received`` and the sweeper has it
    drained later.
    """
    fields = (_thin_envelope_fields if shapes.is_thin(payload) else _envelope_fields)(payload)
    # One statement, so no explicit transaction: in autocommit it is committed when it
    # returns (BEGIN and COMMIT would be two more round trips on the hot path), and the
    # signal is then sent at once; inside a caller's transaction it waits for that
    # commit as usual.
    row_id, inserted = _insert_event(
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
        ]
    )
    if inserted:
        # Not a job per event: one drain job takes the whole burst (see "draining").
        signal_work_on_commit(
            EVENTS_SIGNAL,
            "webhooks",
            DRAIN_EVENTS_JOB,
            ttl=settings.DRAIN_SIGNAL_TTL_SECONDS,
            debounce=settings.DRAIN_SIGNAL_DEBOUNCE_SECONDS,
        )
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

# The two drains: the Redis key of each one's "work exists" signal and its job.
EVENTS_SIGNAL = "billing-events"
RUNS_SIGNAL = "billing-runs"
DRAIN_EVENTS_JOB = "billing.jobs.drain_events_job"
DRAIN_RUNS_JOB = "billing.jobs.drain_runs_job"


def event_process(*, event_pk: int) -> bool:
    """Process one event now, as a drain would: create its handler runs (once), run its
    customer projection, and signal the follow-up drain for the other runs (they still
    succeed or fail one by one; a failed run is retried alone).

    For replays and the sweeper's retry of a failed event. Safe to call any number of
    times for one event, concurrently too: the event row is locked (``SKIP LOCKED``: a
    second worker just leaves), an event a drain has claimed is left to it, and runs are
    unique per handler. Returns False when another worker holds the event.
    """
    now = timezone.now()
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update(skip_locked=True).filter(pk=event_pk).first()
        if event is None or event.status == EventStatus.UNUSABLE:
            return False
        if event.status != EventStatus.PROCESSED:
            if event.claimed_until is not None and event.claimed_until > now:
                return False  # a drain job holds it (and will process it)
            event.attempts += 1
            event.claimed_until = now + timedelta(seconds=settings.DRAIN_CLAIM_SECONDS)
            event.save(update_fields=["attempts", "claimed_until"])
    note_stripe_event(event.stripe_id or "")
    _events_process([event])
    _signal_follow_ups([event.pk])
    return True


# --- draining: the events table is the queue --------------------------------------------

_CLAIM_EVENTS = """
UPDATE billing_stripeevent SET claimed_until = %s, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM billing_stripeevent
    WHERE status = %s AND (claimed_until IS NULL OR claimed_until < %s)
    ORDER BY received_at, id
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


def events_claim(*, limit: int | None = None) -> list[int]:
    """Claim up to ``limit`` (``DRAIN_BATCH_SIZE``) received events, oldest first, in one
    statement; returns their ids. Rows another drain is claiming are skipped (``SKIP
    LOCKED``) and rows it claimed are invisible until its claim expires
    (``DRAIN_CLAIM_SECONDS``), so two drains never take the same event."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_EVENTS,
            [
                now + timedelta(seconds=settings.DRAIN_CLAIM_SECONDS),
                EventStatus.RECEIVED,
                now,
                limit or settings.DRAIN_BATCH_SIZE,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _by_stripe_order(event: StripeEvent) -> tuple[datetime, int]:
    return (event.created or event.received_at, event.pk)


def events_drain_batch(*, limit: int | None = None) -> int:
    """Claim one batch of received events and process it; returns how many were claimed.

    The batch is split by customer; each customer's events are processed in ``created``
    order (the order rules of billing/status_map.py still decide the outcome, whatever
    order events arrive in), each customer in its own transaction, so one bad event
    never holds up another customer's. Follow-up runs are signalled once per batch.
    """
    pks = events_claim(limit=limit)
    if not pks:
        return 0
    groups: dict[str, list[StripeEvent]] = {}
    for event in sorted(StripeEvent.objects.filter(pk__in=pks), key=_by_stripe_order):
        groups.setdefault(event.stripe_customer_id or f"event:{event.pk}", []).append(event)
    for group in _events_fast(groups):
        _events_process(group)
    _signal_follow_ups(pks)
    return len(pks)


def _events_fast(groups: dict[str, list[StripeEvent]]) -> list[list[StripeEvent]]:
    """Process the batch's common case in one transaction and a few queries: events of
    customers we know whose snapshots say all the projection needs
    (``projection.project_known``): their handler runs are created, the projection's
    already succeeded, and the events marked processed, all in one commit. Returns the
    groups left, for :func:`_events_process` one customer at a time (where one bad event
    is isolated). If anything fails here, nothing of it is kept and every group is left.
    """
    eligible = {key: group for key, group in groups.items() if _fast_eligible(key, group)}
    done: set[str] = set()
    if eligible:
        try:
            with transaction.atomic():
                done = _events_fast_apply(eligible)
        except Exception as exc:  # noqa: BLE001 - every group is processed one by one below
            logger.warning(
                "batch projection failed (%s); processing its customers one by one",
                exc.__class__.__name__,
            )
            done = set()
        for key in done:
            _log_processed(groups[key])
    return [group for key, group in groups.items() if key not in done]


def _fast_eligible(key: str, group: list[StripeEvent]) -> bool:
    """Whether a customer's events may take the batch path: snapshot events (a thin one
    is fetched first), none about a one-time payment's order (billing/orders.py decides
    those) and none processed already. Whether the projection can apply them from their
    snapshots alone, ``projection.project_known`` decides."""
    if key.startswith("event:"):
        return False
    return not any(
        event.status != EventStatus.RECEIVED or event.is_thin or event.type in ORDER_EVENTS
        for event in group
    )


def _events_fast_apply(groups: dict[str, list[StripeEvent]]) -> set[str]:
    """The batch path's transaction (see :func:`_events_fast`); returns the keys of the
    groups it processed."""
    from billing.handlers import projection_changes

    pks = [event.pk for group in groups.values() for event in group]
    # Runs left by a replay or an earlier attempt, and finance actions waiting for one of
    # these events to confirm them: those customers go one by one, through the handlers.
    holding = set(
        HandlerRun.objects.filter(event_id__in=pks).values_list("event_id", flat=True).distinct()
    )
    awaited = _actions_awaited(groups)
    groups = {
        key: group
        for key, group in groups.items()
        if key not in awaited and not any(event.pk in holding for event in group)
    }
    started = timezone.now()
    results = project_known(
        {
            key: [
                Snapshot(
                    event.stripe_id or "", event.snapshot_type, event.created, event.data_object
                )
                for event in group
            ]
            for key, group in groups.items()
        }
    )
    if not results:
        return set()
    finished = timezone.now()
    runs = []
    for key, projected in results.items():
        for event, result in zip(groups[key], projected, strict=True):
            for name in status_map.handlers_for(event.type):
                if name != status_map.PROJECTION:
                    runs.append(RunRow(event.pk, name))
                    continue
                runs.append(
                    RunRow(
                        event.pk,
                        name,
                        status=RunStatus.SUCCEEDED,
                        attempts=1,
                        note=result.note[:300],
                        changes=projection_changes(result),
                        started_at=started,
                        finished_at=finished,
                    )
                )
    _runs_create(runs, skip_existing=False)
    processed = [event for key in results for event in groups[key]]
    StripeEvent.objects.filter(pk__in=[event.pk for event in processed]).update(
        status=EventStatus.PROCESSED, processed_at=finished, last_error="", claimed_until=None
    )
    for event in processed:
        event.status, event.claimed_until = EventStatus.PROCESSED, None
    return set(results)


class RunRow(NamedTuple):
    """A handler run to create (:func:`_runs_create`): pending unless told otherwise."""

    event_id: int
    handler: str
    status: str = RunStatus.PENDING
    attempts: int = 0
    note: str = ""
    changes: list[str] = []  # noqa: RUF012 - a NamedTuple default, never mutated
    started_at: datetime | None = None
    finished_at: datetime | None = None


_INSERT_RUNS = """
INSERT INTO billing_handlerrun
    (event_id, handler, status, attempts, note, changes, started_at, finished_at,
     last_error, next_attempt_at, created_at)
SELECT t.*, '', %s, %s
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[], %s::text[], %s::jsonb[],
            %s::timestamptz[], %s::timestamptz[])
    AS t(event_id, handler, status, attempts, note, changes, started_at, finished_at)
{on_conflict}
"""


def _runs_create(runs: list[RunRow], *, skip_existing: bool) -> None:
    """Create handler runs in one statement (hundreds per batch: one ``INSERT ... SELECT
    FROM unnest`` costs a fraction of building a model object per run). With
    ``skip_existing``, a run that exists already (same event and handler) is left as it
    is; without, it is an error."""
    if not runs:
        return
    now = timezone.now()
    columns = list(zip(*runs, strict=True))
    columns[5] = [json.dumps(changes) for changes in columns[5]]
    on_conflict = "ON CONFLICT (event_id, handler) DO NOTHING" if skip_existing else ""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_RUNS.format(on_conflict=on_conflict), [now, now, *map(list, columns)]
        )


def _actions_awaited(groups: dict[str, list[StripeEvent]]) -> set[str]:
    """Keys of the groups holding an event that may confirm a submitted finance action
    (billing/confirmations.py: a subscription's or a refunded charge's)."""
    by_object: dict[str, str] = {}
    for key, group in groups.items():
        for event in group:
            if event.type.startswith("customer.subscription.") or event.type == "charge.refunded":
                by_object[str(event.data_object.get("id") or "")] = key
    by_object.pop("", None)
    if not by_object:
        return set()
    ids = list(by_object)
    awaited = FinanceAction.objects.filter(state=ActionState.SUBMITTED).filter(
        Q(stripe_subscription_id__in=ids) | Q(charge_id__in=ids)
    )
    return {
        by_object[object_id]
        for pair in awaited.values_list("stripe_subscription_id", "charge_id")
        for object_id in pair
        if object_id in by_object
    }


def events_drain(*, max_seconds: float | None = None) -> int:
    """The drain job: claim and process batches until none is left (or ``max_seconds``,
    ``DRAIN_MAX_SECONDS``, have passed: then a fresh job takes over). Returns the number
    of events claimed.

    The signal is cleared first, so an event committed after this point signals a new
    job (a second worker joins in under a burst) and none is left without one.
    """
    return drain(
        EVENTS_SIGNAL,
        "webhooks",
        DRAIN_EVENTS_JOB,
        events_drain_batch,
        max_seconds=max_seconds,
        # Ingest signals at most once per DRAIN_SIGNAL_DEBOUNCE_SECONDS per process: the
        # drain waits twice as long (clocks, scheduling) before it ends.
        linger=2 * settings.DRAIN_SIGNAL_DEBOUNCE_SECONDS,
    )


def _signal_follow_ups(event_pks: list[int]) -> None:
    """Wake the follow-up drain if these events left runs for it (one query, one SET NX).

    Sent at once, not on commit: every caller runs after its transactions committed."""
    if _due_runs().filter(event_id__in=event_pks).exists():
        signal_work(
            RUNS_SIGNAL, FOLLOW_UP_QUEUE, DRAIN_RUNS_JOB, ttl=settings.DRAIN_SIGNAL_TTL_SECONDS
        )


def _events_process(events: list[StripeEvent]) -> None:
    """Process claimed events of one customer, in the order given: handler runs created
    and the events marked processed in one transaction (one per event if that fails, so
    a poisoned event is isolated and marked failed), then the projection runs, in order,
    in a second one."""
    try:
        with transaction.atomic():
            projections = _events_prepare(events)
    except Exception as exc:  # noqa: BLE001 - isolated below; nothing is lost
        if len(events) == 1:
            _event_failed(events[0], exc)
            return
        for event in events:
            _events_process([StripeEvent.objects.get(pk=event.pk)])
        return
    by_pk = {event.pk: event for event in events}
    # One commit for the customer's projections (each its own savepoint, so a failing
    # one is recorded and the others stand): a worker dying half-way leaves them all
    # started, for the sweeper, and none applied twice.
    with transaction.atomic():
        # Held until this commit: the sweeper and the follow-up drain skip locked runs
        # (SKIP LOCKED), so a slow group's later runs are never taken for stuck ones and
        # run again (which would overwrite what the first run recorded as changed).
        list(
            HandlerRun.objects.select_for_update()
            .filter(pk__in=[run.pk for run in projections])
            .values_list("pk", flat=True)
        )
        for run in sorted(projections, key=lambda r: _by_stripe_order(by_pk[r.event_id])):
            run.event = by_pk[run.event_id]
            _execute_claimed(run)
    _log_processed(events)


def _log_processed(events: list[StripeEvent]) -> None:
    for event in events:
        if event.status == EventStatus.PROCESSED:
            with bind(
                request_id=event.stripe_id or f"event-{event.pk}",
                stripe_event_id=event.stripe_id or "",
            ):
                logger.info("event %s processed", event.stripe_id)


def _events_prepare(events: list[StripeEvent]) -> list[HandlerRun]:
    """Create the runs of events not processed yet, mark them processed (their claim
    ends) and claim their due projection runs. Call inside a transaction."""
    ready = []
    runs = []
    for event in events:
        if event.status == EventStatus.PROCESSED:
            ready.append(event)
            continue
        if not _thin_object_fetch(event):
            continue  # left failed, for the sweeper
        ready.append(event)
        runs += [RunRow(event.pk, name) for name in status_map.handlers_for(event.type)]
    if not ready:
        return []
    _runs_create(runs, skip_existing=True)
    now = timezone.now()
    fresh = [event.pk for event in ready if event.status != EventStatus.PROCESSED]
    if fresh:
        StripeEvent.objects.filter(pk__in=fresh).update(
            status=EventStatus.PROCESSED, processed_at=now, last_error="", claimed_until=None
        )
    for event in ready:
        event.status, event.claimed_until = EventStatus.PROCESSED, None
    return _claim_all(
        _due_runs().filter(
            event_id__in=[event.pk for event in ready], handler=status_map.PROJECTION
        )
    )


def _event_failed(event: StripeEvent, exc: BaseException) -> None:
    """An event that could not be prepared: failed (the sweeper retries it), the others
    of its batch go on; a person is told once it has failed ``HANDLER_MAX_ATTEMPTS``."""
    error = f"{exc.__class__.__name__}: {exc}"[:1000]
    logger.warning("event %s failed: %s", event.stripe_id, exc.__class__.__name__)
    StripeEvent.objects.filter(pk=event.pk).update(
        status=EventStatus.FAILED, last_error=error, claimed_until=None
    )
    if event.attempts >= settings.HANDLER_MAX_ATTEMPTS:
        problems.report(
            key=f"event_failed:{event.pk}",
            title=f"Stripe event {event.stripe_id} cannot be processed",
            detail=f"{event.attempts} attempts; last error: {error}",
        )


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
        event.claimed_until = None  # released, as _event_failed does: the sweeper retries it
        event.save(update_fields=["attempts", "status", "last_error", "claimed_until"])
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


def _claim_all(runs: QuerySet[HandlerRun]) -> list[HandlerRun]:
    """Lock every due run of ``runs`` (skipping those another worker holds) and mark them
    started, as :func:`_claim` does for one. Call inside a transaction."""
    claimed = list(runs.select_for_update(skip_locked=True, of=("self",)))
    if not claimed:
        return []
    now = timezone.now()
    HandlerRun.objects.filter(pk__in=[run.pk for run in claimed]).update(
        status=RunStatus.STARTED, attempts=F("attempts") + 1, started_at=now
    )
    for run in claimed:
        run.status, run.attempts, run.started_at = RunStatus.STARTED, run.attempts + 1, now
    return claimed


_CLAIM_RUNS = """
UPDATE billing_handlerrun SET status = %s, attempts = attempts + 1, started_at = %s
WHERE id IN (
    SELECT r.id FROM billing_handlerrun r
    JOIN billing_stripeevent e ON e.id = r.event_id
    WHERE r.status IN (%s, %s) AND {condition}
    ORDER BY r.next_attempt_at, r.id
    LIMIT %s
    FOR UPDATE OF r SKIP LOCKED
)
RETURNING id
"""


def handler_runs_claim(*, run_pks: list[int] | None = None, limit: int | None = None) -> list[int]:
    """Claim (mark started) up to ``limit`` due handler runs of processed events in one
    statement, or, with ``run_pks``, those of them still pending or failed (the sweeper
    already decided they are due). Returns their ids."""
    now = timezone.now()
    if run_pks is None:
        condition, params = (
            "r.next_attempt_at <= %s AND e.status = %s",
            [now, EventStatus.PROCESSED],
        )
    else:
        condition, params = "r.id = ANY(%s)", [list(run_pks)]
        limit = limit or len(run_pks)
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_RUNS.format(condition=condition),
            [
                RunStatus.STARTED,
                now,
                RunStatus.PENDING,
                RunStatus.FAILED,
                *params,
                limit or settings.DRAIN_RUNS_BATCH_SIZE,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _handler_order(name: str) -> tuple[int, str]:
    """The projection first (subscribers read what it wrote), then the mirror, then the
    subscribers by name."""
    return ({status_map.PROJECTION: 0, status_map.MIRROR: 1}.get(name, 2), name)


# How often a follow-up batch asks whether an events drain waits (one Redis LLEN).
YIELD_CHECK_SECONDS = 0.05


def handler_runs_drain_batch(
    *, run_pks: list[int] | None = None, yield_to: str | None = None
) -> int:
    """Claim one batch of due runs and execute them, grouped per handler (subscriber) and,
    within one, in the events' ``created`` order; each run is executed and recorded in its
    own transaction. Returns how many were claimed.

    ``yield_to``: a queue whose jobs come first. When one waits there (checked every
    ``YIELD_CHECK_SECONDS``), the runs not executed yet are handed back (pending again)
    and the batch ends, so a burst's new events wait for one follow-up run at most, not
    for a whole batch of them."""
    pks = handler_runs_claim(run_pks=run_pks)
    if not pks:
        return 0
    runs = list(HandlerRun.objects.select_related("event").filter(pk__in=pks))
    events: dict[int, StripeEvent] = {}
    for run in runs:
        run.event = events.setdefault(run.event_id, run.event)  # one copy per event
    runs.sort(key=lambda r: (_handler_order(r.handler), _by_stripe_order(r.event)))
    from billing.handlers import published_for_runs

    published = published_for_runs(runs)
    touched = checked = time.monotonic()
    for n, run in enumerate(runs):
        if yield_to and time.monotonic() - checked > YIELD_CHECK_SECONDS:
            checked = time.monotonic()
            if queue_waiting(yield_to):
                _runs_release(runs[n:])
                break
        if time.monotonic() - touched > settings.SWEEP_STUCK_AFTER_SECONDS / 4:
            # Still alive: the sweeper takes a run "started" too long ago for a dead one.
            HandlerRun.objects.filter(
                pk__in=[r.pk for r in runs[n:]], status=RunStatus.STARTED
            ).update(started_at=timezone.now())
            touched = time.monotonic()
        with bind(request_id=f"run-{run.pk}", stripe_event_id=run.event.stripe_id or ""):
            _execute_claimed(run, billing_event=published.get(run.event_id))
    return len(pks)


def _runs_release(runs: list[HandlerRun]) -> None:
    """Hand claimed runs back unexecuted: pending again, the claim's attempt not counted."""
    HandlerRun.objects.filter(pk__in=[run.pk for run in runs], status=RunStatus.STARTED).update(
        status=RunStatus.PENDING, attempts=F("attempts") - 1, started_at=None
    )


def handler_runs_drain(
    *, run_pks: list[int] | None = None, max_seconds: float | None = None
) -> int:
    """The follow-up drain job: like :func:`events_drain`, for due handler runs. With
    ``run_pks`` (the sweeper's list) it runs those only. Returns the number claimed.

    It steps aside when an events drain waits on ``webhooks`` (workers take that queue
    first), within a batch too (``yield_to``), handing over to a fresh job, so the
    customer projection of new events never waits behind follow-ups."""
    if run_pks is not None:
        return handler_runs_drain_batch(run_pks=run_pks)
    return drain(
        RUNS_SIGNAL,
        FOLLOW_UP_QUEUE,
        DRAIN_RUNS_JOB,
        lambda: handler_runs_drain_batch(yield_to="webhooks"),
        max_seconds=max_seconds,
        step_aside_for="webhooks",
    )


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


def _execute_claimed(run: HandlerRun, *, billing_event: BillingEvent | None = None) -> str:
    """Run a claimed run's handler and record the outcome (its own transaction).
    ``billing_event``: what a subscriber sees, when the batch read it already."""
    from billing.handlers import handle

    event = run.event
    with bind(
        request_id=event.stripe_id or f"event-{event.pk}", stripe_event_id=event.stripe_id or ""
    ):
        try:
            # The handler's writes and "succeeded" commit together: a worker dying in
            # between cannot leave an applied effect marked as still running.
            with transaction.atomic():
                outcome = handle(run.handler, event, billing_event=billing_event)
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
    """Drain work that has no job: events stored without one (or whose claim a dead
    worker left), failed events, due and stuck runs.

    Runs every ``SWEEP_INTERVAL_SECONDS`` from ``manage.py run_scheduler``. Enqueueing
    twice is harmless (processing is idempotent and claims rows with SKIP LOCKED).
    Returns counts: events waiting, runs due, runs stuck, event claims released.
    """
    now = now or timezone.now()
    counts = {"events": 0, "runs": 0, "stuck": 0, "claims": 0}
    # A claim past its time belongs to a worker that died: release it (a drain would take
    # it anyway; releasing makes the sweeper's own view, and its count, exact).
    counts["claims"] = StripeEvent.objects.filter(
        status=EventStatus.RECEIVED, claimed_until__lt=now
    ).update(claimed_until=None)
    event_cutoff = now - timedelta(seconds=settings.SWEEP_EVENT_DELAY_SECONDS)
    waiting = StripeEvent.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=EventStatus.RECEIVED,
        received_at__lte=event_cutoff,
    ).count()
    if waiting and enqueue_now("webhooks", DRAIN_EVENTS_JOB):
        counts["events"] += waiting
    for pk in (
        StripeEvent.objects.filter(status=EventStatus.FAILED, received_at__lte=event_cutoff)
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

    due = list(
        HandlerRun.objects.filter(
            status__in=[RunStatus.PENDING, RunStatus.FAILED],
            next_attempt_at__lte=now,
            event__status=EventStatus.PROCESSED,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
    size = settings.DRAIN_BATCH_SIZE
    for start in range(0, len(due), size):
        chunk = due[start : start + size]
        if enqueue_now(FOLLOW_UP_QUEUE, DRAIN_RUNS_JOB, chunk):
            counts["runs"] += len(chunk)
    return counts


# --- replay ---------------------------------------------------------------------------


def _can_replay(actor: Any | None) -> bool:
    return actor is None or actor.has_perm(REPLAY_EVENTS)


def events_replay(*, actor: Any | None, event_pks: list[int], reason: str = "") -> int:
    """Process the given events again. Effects are not duplicated: runs that succeeded
    are not re-run; failed or dead ones are reset to pending and run again.

    A failed event goes back to ``received`` and its runs to pending: the two drains take
    them, so a replay of thousands of events costs two jobs, not one per event."""
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
                event.claimed_until = None
                event.save(update_fields=["status", "claimed_until"])
            HandlerRun.objects.filter(
                event=event, status__in=[RunStatus.FAILED, RunStatus.DEAD]
            ).update(status=RunStatus.PENDING, next_attempt_at=timezone.now())
            audit_record(
                action=codes.BILLING_EVENT_REPLAYED,
                actor=actor,
                target=event,
                data={"stripe_event_id": event.stripe_id, "type": event.type, "reason": reason},
            )
            count += 1
    if count:
        enqueue_on_commit("webhooks", DRAIN_EVENTS_JOB)
        enqueue_on_commit(FOLLOW_UP_QUEUE, DRAIN_RUNS_JOB)
    return count


def handler_runs_replay(*, actor: Any | None, run_pks: list[int], reason: str = "") -> int:
    """Give dead (or failed) handler runs a fresh start."""
    if not _can_replay(actor):
        raise PermissionDenied("You may not replay handler runs.")
    replayed: list[int] = []
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
            replayed.append(run.pk)
        if replayed:
            enqueue_on_commit(FOLLOW_UP_QUEUE, DRAIN_RUNS_JOB, replayed)
    return len(replayed)
