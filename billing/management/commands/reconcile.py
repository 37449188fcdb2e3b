"""manage.py reconcile [--repair]

Lists Stripe's customers and subscriptions (paged), compares them with the canonical
records and prints drift by category. ``--repair`` fixes it through the projection
code and audits each fix as a system action. The run and its counts are stored.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.progress import ProgressBar
from billing.reconcile import CATEGORIES, reconcile_run


class Command(BaseCommand):
    help = "Compare Stripe with the canonical customers; --repair fixes the drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--repair", action="store_true")

    def handle(self, *args: Any, repair: bool, **options: Any) -> None:
        bars: dict[str, ProgressBar] = {}

        def progress(label: str, total: int | None) -> None:
            if label not in bars:
                for bar in bars.values():
                    bar.finish()
                bars[label] = ProgressBar(total, f"{label:<13}", stream=self.stderr._out)
            bars[label].advance()

        run = reconcile_run(repair=repair, progress=progress)
        for bar in bars.values():
            bar.finish()
        if run.error:
            raise CommandError(f"reconcile stopped: {run.error}")
        self.stdout.write(
            f"Reconcile #{run.pk}: {run.drift_total} drift item(s)"
            + (" repaired" if repair else "")
        )
        for category in CATEGORIES:
            self.stdout.write(f"  {category:<22} {run.drift_counts.get(category, 0)}")
        for item in run.details[:50]:
            self.stdout.write(
                f"  - {item['category']}: {item['stripe_customer_id']} "
                f"local={item['local']} stripe={item['stripe']}"
            )
