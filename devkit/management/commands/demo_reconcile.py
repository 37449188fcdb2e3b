"""manage.py demo_reconcile [--wait 60]: ``make demo``'s start-up reconcile.

Waits (bounded) until the worker has processed the seeded events, then compares Stripe
(localstripe) with the console once, as the scheduler will every
``RECONCILE_INTERVAL_MINUTES``, and prints one line: the demo starts from a checked state
and the dashboard's "Last reconciliation" card is filled. Refuses to run in production.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import EventStatus, HandlerRun, RunStatus, StripeEvent
from billing.reconcile import reconcile_run
from delivery.models import OutboxMessage, OutboxState


class Command(BaseCommand):
    help = "Wait for the seeded events to be processed, then reconcile once (demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", type=float, default=60.0, help="Seconds (default 60).")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo_reconcile is for the demo; run manage.py reconcile.")
        deadline = time.monotonic() + options["wait"]
        waiting = StripeEvent.objects.filter(status=EventStatus.RECEIVED)
        # ...and their follow-ups (CRM, helpdesk, emails), so the demo's own output is
        # over when the logins are printed.
        busy = HandlerRun.objects.filter(status__in=[RunStatus.PENDING, RunStatus.STARTED])
        sending = OutboxMessage.objects.filter(
            state__in=[OutboxState.PENDING, OutboxState.DELIVERING]
        )
        while time.monotonic() < deadline and (
            waiting.exists() or busy.exists() or sending.exists()
        ):
            time.sleep(0.5)
        left = waiting.count()
        run = reconcile_run(repair=False)
        drift = ", ".join(f"{k} {v}" for k, v in sorted(run.drift_counts.items()) if v)
        self.stdout.write(
            f"Reconcile #{run.pk}: {run.drift_total} drift item(s)"
            + (f" ({drift})" if drift else ": Stripe and the console agree")
            + (f"; {left} event(s) were still waiting for the worker" if left else "")
            + (f"; error: {run.error}" if run.error else "")
        )
