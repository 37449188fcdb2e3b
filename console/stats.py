"""Pre-aggregated counters behind the operations dashboard and the alert rules.

Two kinds, both written by the system (no actor, nothing to audit):

- ``EventHourlyStats`` rows: one per hour of received Stripe events, refreshed by
  :func:`stats_rollup` from the scheduler. Rows are recomputed from the raw tables with
  one grouped query per range, so a rollup that runs twice or late is still exact.
- Rejected webhook deliveries (bad signature, malformed body): these never become a
  row, so billing's receiver counts them in Redis (billing/rejections.py).

The same grouped queries also answer "the hours not rolled up yet" live (:func:`raw_stats`),
so the dashboard is exact whatever the scheduler's state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from billing.models import HandlerRun, StripeEvent
from console.models import EventHourlyStats
from delivery.models import OutboxMessage

logger = logging.getLogger(__name__)

# Upper bounds (seconds) of the event-lag histogram buckets; the last bucket is open.
LAG_BOUNDS: tuple[float, ...] = (
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
PAYMENT_TYPES = ("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed")
PAID_TYPES = ("invoice.paid", "invoice.payment_succeeded")
HOUR = timedelta(hours=1)
# How many closed hours the scheduler recomputes each time (late processing, retries).
REFRESH_HOURS = 3
# Outbox rows change state for longer (retries with backoff, a person retrying dead
# ones), so their per-hour counts are recomputed over a longer tail.
SYNC_REFRESH_HOURS = 48
SYNC_CHANNELS = ("crm", "helpdesk")


def hour_floor(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


@dataclass
class Stats:
    """Counters of a time range (an hour, a window); adding two ranges adds everything."""

    events: int = 0
    deliveries: int = 0
    duplicates: int = 0
    failed: int = 0
    unusable: int = 0
    payments: int = 0
    payments_failed: int = 0
    recoveries: int = 0
    handler_runs: int = 0
    lag_histogram: list[int] = field(default_factory=lambda: [0] * (len(LAG_BOUNDS) + 1))
    # outbox rows created in the range: channel -> state -> count
    sync_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, other: Stats | EventHourlyStats) -> None:
        for name in _COUNTER_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for i, n in enumerate(other.lag_histogram or []):
            self.lag_histogram[i] += n
        for channel, states in (other.sync_counts or {}).items():
            mine = self.sync_counts.setdefault(channel, {})
            for state, n in states.items():
                mine[state] = mine.get(state, 0) + n

    def lag_percentile(self, p: float) -> float | None:
        """Upper bound (s) of the bucket holding the p-th percentile; None when no data.
        ``inf`` means "over an hour"."""
        total = sum(self.lag_histogram)
        if not total:
            return None
        running = 0
        for i, n in enumerate(self.lag_histogram):
            running += n
            if running >= p * total:
                return LAG_BOUNDS[i] if i < len(LAG_BOUNDS) else float("inf")
        return float("inf")


STATS_FIELDS = tuple(f.name for f in fields(Stats))
_COUNTER_NAMES = tuple(n for n in STATS_FIELDS if n not in ("lag_histogram", "sync_counts"))

# Table names come from the models, so the import graph shows what these queries read.
EVENTS = StripeEvent._meta.db_table
RUNS = HandlerRun._meta.db_table
OUTBOX = OutboxMessage._meta.db_table

_EVENTS_SQL = f"""
SELECT date_trunc('hour', e.received_at) AS hour,
       count(*) FILTER (WHERE e.stripe_id IS NOT NULL),
       coalesce(sum(e.delivery_count) FILTER (WHERE e.stripe_id IS NOT NULL), 0),
       coalesce(sum(e.delivery_count - 1) FILTER (WHERE e.stripe_id IS NOT NULL), 0),
       count(*) FILTER (WHERE e.status = 'failed'),
       count(*) FILTER (WHERE e.status = 'unusable'),
       count(*) FILTER (WHERE e.type IN {PAYMENT_TYPES!r}),
       count(*) FILTER (WHERE e.type = 'invoice.payment_failed'),
       count(*) FILTER (WHERE e.type IN {PAID_TYPES!r} AND e.object_id <> '' AND EXISTS (
           SELECT 1 FROM {EVENTS} f
           WHERE f.object_id = e.object_id AND f.type = 'invoice.payment_failed'
             AND f.received_at < e.received_at))
FROM {EVENTS} e
WHERE e.received_at >= %s AND e.received_at < %s
GROUP BY 1
"""

_LAG_SQL = f"""
SELECT date_trunc('hour', e.received_at) AS hour,
       width_bucket(extract(epoch FROM r.finished_at - e.received_at)::float8, %s::float8[]),
       count(*)
FROM {EVENTS} e
JOIN {RUNS} r ON r.event_id = e.id AND r.handler = 'customer_projection'
WHERE r.status = 'succeeded' AND r.finished_at IS NOT NULL
  AND e.received_at >= %s AND e.received_at < %s
GROUP BY 1, 2
"""

_SYNC_SQL = f"""
SELECT date_trunc('hour', created_at), channel, state, count(*) FROM {OUTBOX}
WHERE created_at >= %s AND created_at < %s AND channel IN {SYNC_CHANNELS!r}
GROUP BY 1, 2, 3
"""

_RUNS_SQL = f"""
SELECT date_trunc('hour', created_at), count(*) FROM {RUNS}
WHERE created_at >= %s AND created_at < %s GROUP BY 1
"""


def raw_stats_by_hour(start: datetime, end: datetime) -> dict[datetime, Stats]:
    """Counters of [start, end) per hour, from the raw tables (three grouped queries).

    Events are placed by ``received_at`` (when Stripe reached us), handler runs by their
    ``created_at``. ``width_bucket`` numbers a value below the first bound 0, so bucket
    ``n`` of SQL is index ``n`` of ``lag_histogram``.
    """
    by_hour: dict[datetime, Stats] = {}
    with connection.cursor() as cursor:
        cursor.execute(_EVENTS_SQL, [start, end])
        for hour, *counts in cursor.fetchall():
            stats = by_hour.setdefault(hour, Stats())
            (
                stats.events,
                stats.deliveries,
                stats.duplicates,
                stats.failed,
                stats.unusable,
                stats.payments,
                stats.payments_failed,
                stats.recoveries,
            ) = (int(c) for c in counts)
        cursor.execute(_LAG_SQL, [list(LAG_BOUNDS), start, end])
        for hour, bucket, count in cursor.fetchall():
            by_hour.setdefault(hour, Stats()).lag_histogram[bucket] += count
        cursor.execute(_RUNS_SQL, [start, end])
        for hour, count in cursor.fetchall():
            by_hour.setdefault(hour, Stats()).handler_runs = count
    for hour, counts in sync_counts_by_hour(start, end).items():
        by_hour.setdefault(hour, Stats()).sync_counts = counts
    return by_hour


def sync_counts_by_hour(
    start: datetime, end: datetime
) -> dict[datetime, dict[str, dict[str, int]]]:
    """Outbox rows of the CRM and helpdesk channels created in [start, end), per hour."""
    by_hour: dict[datetime, dict[str, dict[str, int]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_SYNC_SQL, [start, end])
        for hour, channel, state, count in cursor.fetchall():
            by_hour.setdefault(hour, {}).setdefault(channel, {})[state] = count
    return by_hour


def raw_stats(start: datetime, end: datetime) -> Stats:
    total = Stats()
    for stats in raw_stats_by_hour(start, end).values():
        total.add(stats)
    return total


def rolled_until() -> datetime | None:
    """End of the last hour held by ``EventHourlyStats`` (None: nothing rolled up)."""
    last = EventHourlyStats.objects.aggregate(last=Max("hour"))["last"]
    return last + HOUR if last else None


def _hours(start: datetime, end: datetime) -> Iterable[datetime]:
    hour = start
    while hour < end:
        yield hour
        hour += HOUR


def stats_rollup(*, now: datetime | None = None, start: datetime | None = None) -> int:
    """(Re)compute ``EventHourlyStats`` for closed hours; returns how many rows were written.

    Without ``start`` it recomputes the last ``REFRESH_HOURS`` rolled-up hours and every
    closed hour after them, or, on an empty table, every hour since the first event.
    Every hour of the range gets a row (zeros included), so ``rolled_until`` is exact.
    """
    now = now or timezone.now()
    end = hour_floor(now)
    if start is None:
        until = rolled_until()
        if until is None:
            first = _first_activity()
            if first is None:
                return 0
            start = hour_floor(first)
        else:
            start = until - REFRESH_HOURS * HOUR
    start = hour_floor(start)
    if start >= end:
        return 0
    by_hour = raw_stats_by_hour(start, end)
    refreshed = timezone.now()
    rows = []
    for hour in _hours(start, end):
        stats = by_hour.get(hour, Stats())
        rows.append(
            EventHourlyStats(
                hour=hour,
                refreshed_at=refreshed,
                **{f.name: getattr(stats, f.name) for f in fields(Stats)},
            )
        )
    with transaction.atomic():
        EventHourlyStats.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["hour"],
            update_fields=[*(f.name for f in fields(Stats)), "refreshed_at"],
        )
        # the longer tail of outbox counts, for the hours before this range
        tail_start = max(end - SYNC_REFRESH_HOURS * HOUR, hour_floor(_first_activity() or end))
        if tail_start < start:
            tail = sync_counts_by_hour(tail_start, start)
            old = list(EventHourlyStats.objects.filter(hour__gte=tail_start, hour__lt=start))
            for row in old:
                row.sync_counts = tail.get(row.hour, {})
            EventHourlyStats.objects.bulk_update(old, ["sync_counts"])
    return len(rows)


def _first_activity() -> datetime | None:
    from billing.models import StripeEvent

    return StripeEvent.objects.aggregate(first=Min("received_at"))["first"]


def window_stats(start: datetime, end: datetime) -> tuple[Stats, list[tuple[datetime, Stats]]]:
    """Totals of [start, end) and the per-hour series: closed hours from the rollup, the
    rest (the current hour, or everything when the rollup is behind) from the raw rows.
    ``start`` should be on an hour boundary for the two parts to meet exactly."""
    until = rolled_until() if start == hour_floor(start) else None
    series: dict[datetime, Stats] = {}
    raw_from = start
    if until is not None and until > start:
        for row in EventHourlyStats.objects.filter(
            hour__gte=start, hour__lt=min(until, end)
        ).values("hour", *STATS_FIELDS):
            hour = row.pop("hour")
            series[hour] = Stats(**row)
        raw_from = max(start, min(until, end))
    if raw_from < end:
        series.update(raw_stats_by_hour(raw_from, end))
    total = Stats()
    for stats in series.values():
        total.add(stats)
    return total, sorted(series.items())


def as_dict(stats: Stats) -> dict[str, Any]:
    return {f.name: getattr(stats, f.name) for f in fields(Stats)}
