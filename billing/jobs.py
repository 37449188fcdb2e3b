"""Jobs of the ``webhooks`` queue. They take ids and call one service."""

from __future__ import annotations

from billing import services


def process_event_job(event_pk: int) -> None:
    services.event_process(event_pk=event_pk)


def handler_run_job(run_pk: int) -> None:
    services.handler_run_execute(run_pk=run_pk)


def handler_runs_job(run_pks: list[int]) -> None:
    """The follow-up runs of one event, in order; each is claimed and recorded alone."""
    for run_pk in run_pks:
        services.handler_run_execute(run_pk=run_pk)


def reconcile_job() -> None:
    from billing.reconcile import reconcile_run

    reconcile_run(repair=False)
