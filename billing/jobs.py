"""Jobs of the ``webhooks`` queue. They take ids and call one service."""

from __future__ import annotations

import logging

from audit.context import bind
from billing import services

logger = logging.getLogger(__name__)


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
    """The follow-up runs of one event, in order; each is claimed and recorded alone."""
    for run_pk in run_pks:
        services.handler_run_execute(run_pk=run_pk)


def reconcile_job() -> None:
    from billing.reconcile import reconcile_run

    reconcile_run(repair=False)
