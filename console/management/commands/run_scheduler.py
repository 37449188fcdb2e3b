"""manage.py run_scheduler: the periodic side of the pipeline, as one small process.

Every SWEEP_INTERVAL_SECONDS it runs the sweeper (events stored without a job, due and
stuck handler runs); every RECONCILE_INTERVAL_MINUTES it enqueues a reconcile against
Stripe. Run exactly one next to the workers (``make demo`` does). Stops on Ctrl-C/TERM.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from billing import services
from billing.confirmations import actions_alert_unconfirmed
from config.queueing import enqueue_now
from delivery.outbox import outbox_sweep


class Command(BaseCommand):
    help = "Run the sweeper and the reconcile schedule until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Sweep once and exit.")

    def handle(self, *args: Any, once: bool, **options: Any) -> None:
        stopping = {"now": False}

        def stop(signum: int, frame: Any) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        reconcile_every = settings.RECONCILE_INTERVAL_MINUTES * 60
        next_reconcile = time.monotonic() + reconcile_every if reconcile_every else None
        purge_every = settings.RETENTION_INTERVAL_MINUTES * 60
        next_purge = time.monotonic() if purge_every else None
        self.stdout.write(
            f"scheduler: sweeping every {settings.SWEEP_INTERVAL_SECONDS}s; "
            + (
                f"reconcile every {settings.RECONCILE_INTERVAL_MINUTES} min"
                if reconcile_every
                else "scheduled reconcile off"
            )
        )
        while not stopping["now"]:
            counts = services.sweep()
            counts.update(outbox_sweep())  # downstream syncs: due, stuck and paused rows
            if any(counts.values()):
                self.stdout.write(f"sweep: {counts}")
            self._console_upkeep()
            actions_alert_unconfirmed()  # accepted by Stripe, never confirmed by a webhook
            self._dunning()
            if next_reconcile is not None and time.monotonic() >= next_reconcile:
                enqueue_now("default", "billing.jobs.reconcile_job")
                next_reconcile = time.monotonic() + reconcile_every
            if next_purge is not None and time.monotonic() >= next_purge:
                self._retention()
                next_purge = time.monotonic() + purge_every
            if once:
                break
            close_old_connections()  # a long-lived process: drop broken or stale connections
            deadline = time.monotonic() + settings.SWEEP_INTERVAL_SECONDS
            while not stopping["now"] and time.monotonic() < deadline:
                time.sleep(0.5)

    def _console_upkeep(self) -> None:
        """Refresh the dashboard's hourly counters and evaluate the alert rules, so both
        are never more than a sweep old. A failure is reported and the loop goes on:
        sweeping must never stop for it."""
        from console.alert_rules import alerts_evaluate
        from console.stats import stats_rollup

        try:
            stats_rollup()
            result = alerts_evaluate()
        except Exception as exc:  # noqa: BLE001
            self.stderr.write(f"console upkeep failed: {exc.__class__.__name__}: {exc}")
            return
        if result.raised or result.cleared:
            self.stdout.write(f"alerts: raised {result.raised}, recovered {result.cleared}")

    def _dunning(self) -> None:
        """Revoke customers whose dunning grace ran out with no new event."""
        from provisioning.states import dunning_sweep

        try:
            revoked = dunning_sweep()
        except Exception as exc:  # noqa: BLE001 - the sweeper must keep running
            self.stderr.write(f"dunning sweep failed: {exc.__class__.__name__}: {exc}")
            return
        if revoked:
            self.stdout.write(f"dunning: revoked {revoked} customer(s)")

    def _retention(self) -> None:
        """Purge what is past its retention time (settings RETENTION_*), in batches."""
        from console.retention import retention_purge

        try:
            counts = retention_purge()
        except Exception as exc:  # noqa: BLE001 - the sweeper must keep running
            self.stderr.write(f"retention purge failed: {exc.__class__.__name__}: {exc}")
            return
        if any(counts.values()):
            self.stdout.write(f"retention: purged {counts}")
