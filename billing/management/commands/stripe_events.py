"""manage.py stripe_events replay [--failed] [--ids evt_..] [--type T] [--since ISO]

Reprocesses stored Stripe events: handler runs that succeeded are not run again, failed
and dead ones run again, so a replay never duplicates an effect. Each replayed event is
an audit entry (system actor). Shows a progress bar; ``--dry-run`` only counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from billing import services
from billing.models import EventStatus, RunStatus, StripeEvent
from billing.progress import ProgressBar


class Command(BaseCommand):
    help = "Replay stored Stripe events through the pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        replay = sub.add_parser("replay", help="Reprocess events (idempotent).")
        replay.add_argument(
            "--failed",
            action="store_true",
            help="Events that failed or have failed/dead handler runs.",
        )
        replay.add_argument("--ids", nargs="+", default=[], help="Stripe event ids (evt_...).")
        replay.add_argument("--type", dest="event_type", help="Event type, e.g. invoice.paid")
        replay.add_argument("--since", help="Received at or after (ISO date or datetime).")
        replay.add_argument("--reason", default="", help="Why (kept in the audit log).")
        replay.add_argument("--dry-run", action="store_true", help="Only count what would run.")

    def handle(self, *args: Any, **options: Any) -> None:
        events = self._select(options)
        pks = list(events.values_list("pk", flat=True))
        if options["ids"]:
            missing = set(options["ids"]) - set(events.values_list("stripe_id", flat=True))
            if missing:
                raise CommandError(f"unknown event id(s): {', '.join(sorted(missing))}")
        if options["dry_run"]:
            self.stdout.write(f"{len(pks)} event(s) would be replayed.")
            return
        if not pks:
            self.stdout.write("No stored events match; nothing replayed.")
            return
        bar = ProgressBar(len(pks), "replaying", stream=self.stderr)
        replayed = 0
        for pk in pks:
            replayed += services.events_replay(
                actor=None, event_pks=[pk], reason=options["reason"] or "stripe_events replay"
            )
            bar.advance()
        bar.finish()
        self.stdout.write(
            self.style.SUCCESS(
                f"Replayed {replayed} event(s); their processing jobs are queued on 'webhooks'."
            )
        )

    def _select(self, options: dict[str, Any]) -> QuerySet[StripeEvent]:
        events = StripeEvent.objects.exclude(status=EventStatus.UNUSABLE)
        if not (options["failed"] or options["ids"] or options["event_type"] or options["since"]):
            raise CommandError("Say what to replay: --failed, --ids, --type and/or --since.")
        if options["failed"]:
            events = events.filter(
                Q(status=EventStatus.FAILED)
                | Q(handler_runs__status__in=[RunStatus.FAILED, RunStatus.DEAD])
            ).distinct()
        if options["ids"]:
            events = events.filter(stripe_id__in=options["ids"])
        if options["event_type"]:
            events = events.filter(type=options["event_type"])
        if options["since"]:
            since = parse_datetime(options["since"])
            if since is None:
                day = parse_date(options["since"])
                if day is None:
                    raise CommandError(
                        f"--since: not an ISO date or datetime: {options['since']!r}"
                    )
                since = datetime(day.year, day.month, day.day)
            if timezone.is_naive(since):
                since = timezone.make_aware(since)
            events = events.filter(received_at__gte=since)
        return events.order_by("created", "pk")
