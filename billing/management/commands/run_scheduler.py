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
from config.queueing import enqueue_now


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
        self.stdout.write(f"scheduler: sweeping every {settings.SWEEP_INTERVAL_SECONDS}s; "
                          + (f"reconcile every {settings.RECONCILE_INTERVAL_MINUTES} min"
                             if reconcile_every else "scheduled reconcile off"))
        while not stopping["now"]:
            counts = services.sweep()
            if any(counts.values()):
                self.stdout.write(f"sweep: {counts}")
            # Finance actions Stripe accepted but never confirmed (billing/confirmations.py).
            from billing.confirmations import actions_alert_unconfirmed

            actions_alert_unconfirmed()
            if next_reconcile is not None and time.monotonic() >= next_reconcile:
                enqueue_now("default", "billing.jobs.reconcile_job")
                next_reconcile = time.monotonic() + reconcile_every
            if once:
                break
            close_old_connections()  # a long-lived process: drop broken or stale connections
            deadline = time.monotonic() + settings.SWEEP_INTERVAL_SECONDS
            while not stopping["now"] and time.monotonic() < deadline:
                time.sleep(0.5)
