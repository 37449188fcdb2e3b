"""The alert rules: each condition, its threshold (a setting) and its alert key.

``alerts_evaluate()`` checks every rule once; ``manage.py run_scheduler`` calls it every
sweep and tests call it directly. A rule that holds calls ``alert_raise`` (a no-op while
the alert for that key is open or acknowledged: one alert per condition), a rule that no
longer holds calls ``alert_clear`` (which sends the "recovered" message).

| key                     | condition (settings)                                              |
|-------------------------|-------------------------------------------------------------------|
| webhook_failures        | > ALERT_WEBHOOK_FAILURES_MAX failed deliveries in the last         |
|                         | ALERT_WEBHOOK_FAILURES_MINUTES (rejected, unusable, failed)        |
| handler_dead:<run id>   | a dead handler run (also raised by the pipeline when it dies)     |
| outbox_dead             | any dead outbox row                                               |
| outbox_paused:<channel> | a channel paused by its vendor (a refused token, a missing CRM     |
|                         | property), unless the outbox's own alert for it is open           |
| event_lag               | event lag p95 over the last ALERT_EVENT_LAG_MINUTES               |
|                         | > ALERT_EVENT_LAG_P95_SECONDS                                     |
| stripe_silent           | no Stripe event for ALERT_NO_EVENT_HOURS while subscriptions are  |
|                         | active                                                            |
| reconcile_drift         | the last finished reconcile found drift                           |
| workers_down            | no RQ worker has heartbeated for WORKER_STALE_SECONDS (Redis      |
|                         | answering): nothing processes events or deliveries                |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from billing.models import EventStatus, HandlerRun, ReconcileRun, RunStatus, StripeEvent
from billing.rejections import webhook_rejection_count
from config.health import worker_liveness
from console.alerts import alert_clear, alert_raise
from console.dashboard import ACTIVE_SUBSCRIPTION_STATUSES, lag_percentiles_exact
from console.models import Alert, AlertState
from customers.models import Customer
from delivery.models import OutboxMessage, OutboxState
from delivery.senders import channels


@dataclass
class Evaluation:
    raised: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    holding: list[str] = field(default_factory=list)


def _apply(result: Evaluation, key: str, holds: bool, title: str = "", detail: str = "") -> None:
    if holds:
        result.holding.append(key)
        if alert_raise(key=key, title=title, detail=detail) is not None:
            result.raised.append(key)
    elif alert_clear(key=key):
        result.cleared.append(key)


def rule_webhook_failures(result: Evaluation, now: datetime) -> None:
    minutes = settings.ALERT_WEBHOOK_FAILURES_MINUTES
    since = now - timedelta(minutes=minutes)
    stored = StripeEvent.objects.filter(
        received_at__gte=since, status__in=[EventStatus.FAILED, EventStatus.UNUSABLE]
    ).count()
    rejected = webhook_rejection_count(since, now + timedelta(minutes=1))
    failures = stored + rejected
    _apply(
        result,
        "webhook_failures",
        failures > settings.ALERT_WEBHOOK_FAILURES_MAX,
        f"{failures} failed Stripe webhook deliveries in {minutes} minutes",
        f"{rejected} rejected (bad signature or body: check STRIPE_WEBHOOK_SECRET and the "
        f"endpoint in Stripe), {stored} stored but unusable or failing. "
        f"Threshold: more than {settings.ALERT_WEBHOOK_FAILURES_MAX}.",
    )


def rule_dead_handler_runs(result: Evaluation, now: datetime) -> None:
    dead = {
        run.pk: run
        for run in HandlerRun.objects.filter(status=RunStatus.DEAD)
        .select_related("event")
        .order_by("-id")[:200]
    }
    for run in dead.values():
        _apply(
            result,
            f"handler_dead:{run.pk}",
            True,
            f"Handler {run.handler} is dead for Stripe event {run.event.stripe_id}",
            f"{run.attempts} attempts; last error: {run.last_error}",
        )
    for key in (
        Alert.objects.filter(key__startswith="handler_dead:")
        .exclude(state=AlertState.RECOVERED)
        .values_list("key", flat=True)
    ):
        pk = key.split(":", 1)[1]
        if not pk.isdigit() or int(pk) not in dead:
            if not HandlerRun.objects.filter(pk=pk, status=RunStatus.DEAD).exists():
                _apply(result, key, False)


def rule_dead_outbox(result: Evaluation, now: datetime) -> None:
    count = OutboxMessage.objects.filter(state=OutboxState.DEAD).count()
    _apply(
        result,
        "outbox_dead",
        count > 0,
        f"{count} downstream deliveries are dead",
        "CRM, helpdesk, email or Slack deliveries gave up after their retries; retry them "
        "from the outbox once the cause is fixed.",
    )


def rule_paused_channels(result: Evaluation, now: datetime) -> None:
    """A paused channel, in the words of the error that paused it (a refused token, a
    HubSpot property nobody created ...). Not raised while the outbox's own alert for
    that pause (``sync:<channel>:paused``) is open: one alert per pause."""
    causes: dict[str, str] = {}
    for name, outcome in (
        OutboxMessage.objects.filter(state=OutboxState.PAUSED, outcome__startswith="paused: ")
        .order_by("channel", "-updated_at")
        .values_list("channel", "outcome")
    ):
        causes.setdefault(name, outcome.removeprefix("paused: "))
    paused = causes.keys() | set(
        OutboxMessage.objects.filter(state=OutboxState.PAUSED)
        .values_list("channel", flat=True)
        .distinct()
    )
    reported = set(
        Alert.objects.filter(
            key__in=[f"sync:{name}:paused" for name in paused],
            state__in=[AlertState.OPEN, AlertState.ACKNOWLEDGED],
        ).values_list("key", flat=True)
    )
    for channel in channels():
        cause = causes.get(channel.name) or "the vendor refuses our requests"
        _apply(
            result,
            f"outbox_paused:{channel.name}",
            channel.name in paused and f"sync:{channel.name}:paused" not in reported,
            f"{channel.label} deliveries are paused: {cause}",
            f"Fix the cause ({cause}); paused deliveries are probed every "
            f"{settings.SYNC_PAUSE_PROBE_SECONDS}s and resume with the first success, or "
            "when retried from Admin -> Outbox messages.",
        )


def rule_event_lag(result: Evaluation, now: datetime) -> None:
    minutes = settings.ALERT_EVENT_LAG_MINUTES
    _, p95 = lag_percentiles_exact(now - timedelta(minutes=minutes), now)
    limit = settings.ALERT_EVENT_LAG_P95_SECONDS
    _apply(
        result,
        "event_lag",
        p95 is not None and p95 > limit,
        f"Stripe events take {p95} s (p95) to reach the customer record",
        f"Over the last {minutes} minutes; threshold {limit:g} s. Are the workers running "
        "and keeping up with the webhooks queue?",
    )


def rule_stripe_silent(result: Evaluation, now: datetime) -> None:
    hours = settings.ALERT_NO_EVENT_HOURS
    last = StripeEvent.objects.filter(stripe_id__isnull=False).aggregate(m=Max("received_at"))["m"]
    silent = (last is None or now - last > timedelta(hours=hours)) and Customer.objects.filter(
        status__in=ACTIVE_SUBSCRIPTION_STATUSES
    ).exists()
    since = f"since {timezone.localtime(last):%Y-%m-%d %H:%M}" if last else "ever"
    _apply(
        result,
        "stripe_silent",
        silent,
        f"No Stripe event for over {hours} hours while subscriptions are active",
        f"Nothing received {since}. Check the webhook endpoint in Stripe's dashboard.",
    )


def rule_reconcile_drift(result: Evaluation, now: datetime) -> None:
    run = ReconcileRun.objects.filter(finished_at__isnull=False).first()
    drift = run is not None and run.drift_total > 0
    detail = ", ".join(
        f"{k.replace('_', ' ')}: {v}"
        for k, v in sorted((run.drift_counts if run else {}).items())
        if v
    )
    _apply(
        result,
        "reconcile_drift",
        drift,
        f"Reconcile found {run.drift_total if run else 0} differences with Stripe",
        f"{detail}. Review them, then run manage.py reconcile --repair.",
    )


def rule_workers_down(result: Evaluation, now: datetime) -> None:
    if not settings.ALERT_WORKERS_DOWN:
        return
    live = worker_liveness()
    if live["ok"] is None:
        return  # Redis is not answering: whether workers live is unknown, keep the state
    _apply(
        result,
        "workers_down",
        not live["ok"],
        "No worker is alive: events and deliveries are not being processed",
        f"{live['registered']} worker(s) registered, none with a heartbeat in the last "
        f"{settings.WORKER_STALE_SECONDS} s. Start or restart manage.py run_workers; stored "
        "events and deliveries wait and are processed when a worker is back.",
    )


RULES: tuple[Callable[[Evaluation, datetime], None], ...] = (
    rule_webhook_failures,
    rule_dead_handler_runs,
    rule_dead_outbox,
    rule_paused_channels,
    rule_event_lag,
    rule_stripe_silent,
    rule_reconcile_drift,
    rule_workers_down,
)


def alerts_evaluate(*, now: datetime | None = None) -> Evaluation:
    """Check every rule once (system work: no actor)."""
    now = now or timezone.now()
    result = Evaluation()
    for rule in RULES:
        rule(result, now)
    return result
