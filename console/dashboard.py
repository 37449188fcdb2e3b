"""Selectors of the operations dashboard (reads only; the view is console/dashboard_views.py).

Every number comes with the admin changelist URL of the rows behind it (or None when the
viewer may not open that list, or the list does not exist). Long windows read the hourly
rollup (console/stats.py) plus the live hour; the 1-hour window reads raw rows. Finance
numbers (payment volumes, failed payments and recoveries, tickets per 100 payments,
reconcile drift) are left out for viewers without ``can_view_finance_details``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.db.models import Count, Max
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from billing.models import EventStatus, HandlerRun, ReconcileRun, RunStatus, StripeEvent
from billing.permissions import VIEW_RECONCILERUN
from billing.rejections import webhook_rejection_count
from billing.selectors import events_in_other_api_versions
from config.health import worker_liveness
from console.alerts import can_view_alerts
from console.api_tokens import api_rate_limit_fail_open_count
from console.models import Alert, AlertState
from console.stats import PAYMENT_TYPES, Stats, hour_floor, window_stats
from crm_sync.sync import CHANNEL as CRM
from customers.models import BillingStatus, Customer
from customers.permissions import can_view_finance_details
from delivery.models import OutboxMessage, OutboxState
from delivery.senders import channel_label
from support.models import Ticket
from support.services import CHANNEL as HELPDESK

WINDOWS: dict[str, tuple[str, timedelta]] = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(hours=24)),
    "7d": ("last 7 days", timedelta(days=7)),
}
DEFAULT_WINDOW = "24h"
RUN_STATES = [s.value for s in RunStatus]
QUEUED_OUTBOX_STATES = [OutboxState.PENDING, OutboxState.FAILED, OutboxState.DELIVERING]
ACTIVE_SUBSCRIPTION_STATUSES = [
    BillingStatus.ACTIVE,
    BillingStatus.TRIALING,
    BillingStatus.PAST_DUE,
]


@dataclass
class Metric:
    label: str
    value: Any
    url: str | None = None
    warn: bool = False
    note: str = ""


@dataclass
class Dashboard:
    window: str
    window_label: str
    start: datetime
    end: datetime
    finance: bool
    webhooks: list[Metric] = field(default_factory=list)
    lag: list[Metric] = field(default_factory=list)
    runs: list[Metric] = field(default_factory=list)
    dead_runs: list[HandlerRun] = field(default_factory=list)
    syncs: dict[str, list[Metric]] = field(default_factory=dict)
    payments: list[Metric] = field(default_factory=list)
    reconcile: ReconcileRun | None = None
    drift: list[Metric] = field(default_factory=list)
    last_event: Metric | None = None
    workers: list[Metric] = field(default_factory=list)
    show_alerts: bool = False  # the viewer may see alerts (console.view_alert)
    alerts: list[Alert] = field(default_factory=list)
    series: list[tuple[str, int, int]] = field(default_factory=list)  # label, deliveries, failures
    run_counts: dict[str, int] = field(default_factory=dict)


def window_bounds(window: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a window. The 24 h and 7 d windows start on an hour boundary (the
    current hour counts in full), so they are exact sums of hourly rollup rows."""
    span = WINDOWS[window][1]
    if window == "1h":
        return now - span, now
    return hour_floor(now) - span + timedelta(hours=1), now


def changelist_url(user: Any, model: type, **params: Any) -> str | None:
    """The admin changelist of ``model`` filtered by ``params``, if ``user`` may see it."""
    opts = model._meta
    if not admin.site.is_registered(model) or not user.has_perm(
        f"{opts.app_label}.view_{opts.model_name}"
    ):
        return None
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        return None
    query = {
        k: (
            v.isoformat()
            if isinstance(v, datetime)
            else ",".join(v)
            if isinstance(v, (list, tuple))
            else v
        )
        for k, v in params.items()
    }
    return f"{url}?{urlencode(query)}" if query else url


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _seconds(value: float | None) -> str:
    if value is None:
        return "no data"
    if value == float("inf"):
        return "> 1 h"
    return f"{value:g} s"


def lag_percentiles_exact(start: datetime, end: datetime) -> tuple[float | None, float | None]:
    """Exact p50/p95 (seconds) of received -> customer state updated, for events received
    in [start, end) whose projection run succeeded."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY lag)
            FROM (SELECT extract(epoch FROM r.finished_at - e.received_at)::float8 AS lag
                  FROM billing_stripeevent e JOIN billing_handlerrun r ON r.event_id = e.id
                  WHERE r.handler = 'customer_projection' AND r.status = 'succeeded'
                    AND r.finished_at IS NOT NULL
                    AND e.received_at >= %s AND e.received_at < %s) lags
        """,
            [start, end],
        )
        p50, p95 = cursor.fetchone()
    return (round(p50, 2) if p50 is not None else None, round(p95, 2) if p95 is not None else None)


def _short_series(start: datetime, end: datetime) -> list[tuple[str, int, int]]:
    """Deliveries and failures per 5 minutes, for the 1-hour chart."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT date_bin('5 minutes', received_at, %s) AS bucket,
                   coalesce(sum(delivery_count), 0),
                   count(*) FILTER (WHERE status IN ('failed', 'unusable'))
            FROM billing_stripeevent WHERE received_at >= %s AND received_at < %s
            GROUP BY 1 ORDER BY 1
        """,
            [start, start, end],
        )
        found = {b: (int(d), int(f)) for b, d, f in cursor.fetchall()}
    return [
        (f"{timezone.localtime(b):%H:%M}", *found.get(b, (0, 0)))
        for b in buckets(start, end, timedelta(minutes=5))
    ]


def buckets(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Every bucket start in [start, end): the chart's x axis is time, so a quiet bucket
    is a zero, not a gap that squeezes the axis."""
    out = []
    at = start
    while at < end:
        out.append(at)
        at += step
    return out


def dashboard(*, user: Any, window: str = DEFAULT_WINDOW, now: datetime | None = None) -> Dashboard:
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    now = now or timezone.now()
    start, end = window_bounds(window, now)
    finance = can_view_finance_details(user)
    board = Dashboard(
        window=window, window_label=WINDOWS[window][0], start=start, end=end, finance=finance
    )
    total, hourly = window_stats(start, end)
    _webhooks(board, user, total, start, end)
    _lag(board, user, total, start, end)
    _runs(board, user, total, start, end)
    _syncs(board, user, total, start, end)
    _payments(board, user, total, start, end)
    _last_event(board, user, now)
    _workers(board, start, end)
    # Alerts include reconcile drift and unconfirmed refunds: not for support agents.
    board.show_alerts = can_view_alerts(user)
    if board.show_alerts:
        board.alerts = list(
            Alert.objects.exclude(state=AlertState.RECOVERED).order_by("-raised_at")[:50]
        )
    if window == "1h":
        board.series = _short_series(start, end)
    else:
        fmt = "%H:00" if window == "24h" else "%a %H:00"
        by_hour = dict(hourly)
        board.series = []
        for h in buckets(start, end, timedelta(hours=1)):
            stats = by_hour.get(h) or Stats()
            board.series.append(
                (f"{timezone.localtime(h):{fmt}}", stats.deliveries, stats.failed + stats.unusable)
            )
    return board


def _webhooks(board: Dashboard, user: Any, total: Stats, start: datetime, end: datetime) -> None:
    rejected = webhook_rejection_count(start, end)
    attempts = total.deliveries + total.unusable + rejected
    failures = total.failed + total.unusable + rejected
    window = {"received_at__gte": start, "received_at__lt": end}
    board.webhooks = [
        Metric(
            "Webhook deliveries",
            attempts,
            changelist_url(user, StripeEvent, **window),
            note="every delivery Stripe made, duplicates and rejected ones included",
        ),
        Metric(
            "Events stored",
            total.events,
            changelist_url(user, StripeEvent, stripe_id__isnull="False", **window),
        ),
        Metric(
            "Duplicate deliveries",
            total.duplicates,
            changelist_url(user, StripeEvent, delivery_count__gt=1, **window),
            note="second and later deliveries of an event already stored",
        ),
        Metric(
            "Failed deliveries",
            failures,
            changelist_url(
                user, StripeEvent, status__in=[EventStatus.FAILED, EventStatus.UNUSABLE], **window
            ),
            warn=failures > 0,
            note=f"{rejected} rejected at the door (bad signature or body: no row kept), "
            f"{total.unusable} unusable, {total.failed} failed processing",
        ),
        Metric("Failure rate", _pct(failures, attempts), warn=failures > 0),
    ]
    other_versions = events_in_other_api_versions(start, end)
    board.webhooks.append(
        Metric(
            "Events in another Stripe API version",
            sum(other_versions.values()),
            warn=bool(other_versions),
            note=(
                f"processed all the same; we speak {settings.STRIPE_API_VERSION}"
                + (
                    ": " + ", ".join(f"{v} ({n})" for v, n in sorted(other_versions.items()))
                    if other_versions
                    else ""
                )
            ),
        )
    )


def _lag(board: Dashboard, user: Any, total: Stats, start: datetime, end: datetime) -> None:
    if board.window == "1h":
        p50, p95 = lag_percentiles_exact(start, end)
        note = "exact"
    else:
        p50, p95 = total.lag_percentile(0.5), total.lag_percentile(0.95)
        note = "upper bound of the histogram bucket"
    url = changelist_url(user, StripeEvent, received_at__gte=start, received_at__lt=end)
    board.lag = [
        Metric("Event lag p50", _seconds(p50), url, note=note),
        Metric(
            "Event lag p95",
            _seconds(p95),
            url,
            note=note,
            warn=p95 is not None and p95 > settings.ALERT_EVENT_LAG_P95_SECONDS,
        ),
    ]


def _runs(board: Dashboard, user: Any, total: Stats, start: datetime, end: datetime) -> None:
    # Only the unfinished or broken states are counted live (a small set, indexed by
    # status); succeeded is the rollup's total minus those.
    counts = dict(
        HandlerRun.objects.filter(
            status__in=[s for s in RUN_STATES if s != RunStatus.SUCCEEDED],
            created_at__gte=start,
            created_at__lt=end,
        )
        .values_list("status")
        .annotate(n=Count("id"))
    )
    counts[RunStatus.SUCCEEDED] = max(total.handler_runs - sum(counts.values()), 0)
    board.run_counts = {s: counts.get(s, 0) for s in RUN_STATES}
    board.runs = [
        Metric(
            RunStatus(s).label,
            board.run_counts[s],
            changelist_url(user, HandlerRun, status=s, created_at__gte=start, created_at__lt=end),
            warn=s == RunStatus.DEAD and board.run_counts[s] > 0,
        )
        for s in RUN_STATES
    ]
    board.dead_runs = list(
        HandlerRun.objects.filter(status=RunStatus.DEAD)
        .select_related("event")
        .order_by("-finished_at", "-id")[:20]
    )


def _syncs(board: Dashboard, user: Any, total: Stats, start: datetime, end: datetime) -> None:
    for channel in (CRM, HELPDESK):
        states = total.sync_counts.get(channel, {})
        delivered = states.get(OutboxState.DELIVERED, 0)
        settled = delivered + sum(
            states.get(s, 0) for s in (OutboxState.FAILED, OutboxState.DEAD, OutboxState.PAUSED)
        )
        depth = OutboxMessage.objects.filter(
            channel=channel, state__in=QUEUED_OUTBOX_STATES
        ).count()
        window = {"channel": channel, "created_at__gte": start, "created_at__lt": end}
        board.syncs[channel_label(channel)] = [
            Metric(
                "Delivered",
                delivered,
                changelist_url(user, OutboxMessage, state=OutboxState.DELIVERED, **window),
            ),
            Metric(
                "Success rate",
                _pct(delivered, settled),
                note="delivered / (delivered + failed + dead + paused)",
            ),
            Metric(
                "Dead or paused",
                states.get(OutboxState.DEAD, 0) + states.get(OutboxState.PAUSED, 0),
                changelist_url(
                    user, OutboxMessage, state__in=[OutboxState.DEAD, OutboxState.PAUSED], **window
                ),
                warn=bool(states.get(OutboxState.DEAD) or states.get(OutboxState.PAUSED)),
            ),
            Metric(
                "Queue depth (now)",
                depth,
                changelist_url(
                    user, OutboxMessage, channel=channel, state__in=QUEUED_OUTBOX_STATES
                ),
            ),
        ]


def _payments(board: Dashboard, user: Any, total: Stats, start: datetime, end: datetime) -> None:
    tickets = Ticket.objects.filter(created_at__gte=start, created_at__lt=end).count()
    ticket_url = changelist_url(user, Ticket, created_at__gte=start, created_at__lt=end)
    if not board.finance:
        board.payments = [Metric("Tickets opened", tickets, ticket_url)]
        return
    window = {"received_at__gte": start, "received_at__lt": end}
    per_100 = f"{100 * tickets / total.payments:.1f}" if total.payments else "—"
    board.payments = [
        Metric(
            "Payments",
            total.payments,
            changelist_url(user, StripeEvent, type__in=list(PAYMENT_TYPES), **window),
            note="invoice paid and payment failed events",
        ),
        Metric(
            "Failed payments",
            total.payments_failed,
            changelist_url(user, StripeEvent, type="invoice.payment_failed", **window),
            warn=total.payments_failed > 0,
        ),
        Metric(
            "Recoveries",
            total.recoveries,
            changelist_url(
                user, StripeEvent, type__in=["invoice.paid", "invoice.payment_succeeded"], **window
            ),
            note="invoices paid after a failed attempt (the link lists all paid invoices)",
        ),
        Metric("Tickets opened", tickets, ticket_url),
        Metric("Tickets per 100 payments", per_100, ticket_url),
    ]
    board.reconcile = ReconcileRun.objects.filter(finished_at__isnull=False).first()
    if board.reconcile is not None:
        url = None
        if user.has_perm(VIEW_RECONCILERUN):
            url = reverse("admin:billing_reconcilerun_change", args=[board.reconcile.pk])
        board.drift = [
            Metric(category.replace("_", " "), count, url, warn=count > 0)
            for category, count in sorted(board.reconcile.drift_counts.items())
        ]


def _last_event(board: Dashboard, user: Any, now: datetime) -> None:
    last = StripeEvent.objects.filter(stripe_id__isnull=False).aggregate(m=Max("received_at"))["m"]
    stale_after = timedelta(hours=settings.ALERT_NO_EVENT_HOURS)
    if last is None:
        board.last_event = Metric(
            "Last event from Stripe",
            "never",
            changelist_url(user, StripeEvent),
            warn=True,
            note="no Stripe event has been received yet",
        )
        return
    age = now - last
    stale = (
        age > stale_after
        and Customer.objects.filter(status__in=ACTIVE_SUBSCRIPTION_STATUSES).exists()
    )
    board.last_event = Metric(
        "Last event from Stripe",
        timezone.localtime(last),
        changelist_url(user, StripeEvent),
        warn=stale,
        note=(
            f"stale: nothing for over {settings.ALERT_NO_EVENT_HOURS} h while subscriptions are "
            "active; check the webhook endpoint in Stripe"
        )
        if stale
        else "",
    )


def _workers(board: Dashboard, start: datetime, end: datetime) -> None:
    """Worker liveness (the heartbeat idle workers keep) and the API limiter's fail-opens."""
    live = worker_liveness()
    if live["ok"] is None:
        board.workers.append(
            Metric("Workers alive", "unknown", warn=True, note="Redis is not answering")
        )
    else:
        age = live["newest_heartbeat_age_seconds"]
        board.workers.append(
            Metric(
                "Workers alive",
                live["alive"],
                warn=not live["ok"],
                note=(
                    f"newest heartbeat {age:g} s ago"
                    if age is not None
                    else "no worker has registered: start manage.py run_workers"
                ),
            )
        )
    fail_open = api_rate_limit_fail_open_count(start.timestamp(), end.timestamp())
    board.workers.append(
        Metric(
            "API requests let through unchecked (rate limiter unavailable)",
            fail_open,
            warn=fail_open > 0,
        )
    )
