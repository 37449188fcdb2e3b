"""Jobs of the ``webhooks`` queue. They take ids and call one service."""

from __future__ import annotations

import logging

from audit.context import bind
from billing import services

logger = logging.getLogger(__name__)


def drain_events_job() -> None:
    """Claim and process received events in batches until none is left (the job ingest
    signals; the table is the queue)."""
    with bind(request_id="drain-events", stripe_event_id=""):
        claimed = services.events_drain()
        logger.debug("drained %s event(s)", claimed)  # each event logs its own line


def drain_runs_job(run_pks: list[int] | None = None) -> None:
    """Execute due handler runs in batches per subscriber (or the sweeper's ``run_pks``)."""
    with bind(request_id="drain-runs", stripe_event_id=""):
        claimed = services.handler_runs_drain(run_pks=run_pks)
        logger.debug("drained %s handler run(s)", claimed)


def process_event_job(event_pk: int) -> None:
    # Every log line of the job carries the Stripe event id: event_process tags the block
    # once it has loaded the event (no extra query on the hot path).
    with bind(request_id=f"event-{event_pk}", stripe_event_id=""):
        processed = services.event_process(event_pk=event_pk)
        logger.info(
            "event %s processed" if processed else "event %s left to another worker", event_pk
        )


def handler_run_job(run_pk: int) -> None:
    with bind(request_id=f"run-{run_pk}", stripe_event_id=""):
        status = services.handler_run_execute(run_pk=run_pk)
        logger.info("handler run %s: %s", run_pk, status or "not due")


def handler_runs_job(run_pks: list[int]) -> None:
    """Jobs enqueued before drain jobs existed (a deploy with jobs still queued)."""
    drain_runs_job(run_pks)


def reconcile_job() -> None:
    from billing.reconcile import reconcile_run

    reconcile_run(repair=False)
