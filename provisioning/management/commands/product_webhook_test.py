"""Send a signed ``test.ping`` to a product endpoint and print its answer."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from delivery.errors import DeliveryError
from provisioning.models import ProductEndpoint
from provisioning.webhooks import send_test


class Command(BaseCommand):
    help = (
        "Send a signed test.ping (Standard Webhooks) to the product endpoint and print the "
        "answer: status and latency. Exits non-zero when it is not a 2xx."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--endpoint", type=int, help="Endpoint id (default: the only enabled one)"
        )

    def handle(self, *args: Any, endpoint: int | None, **options: Any) -> None:
        if endpoint is not None:
            target = ProductEndpoint.objects.filter(pk=endpoint).first()
            if target is None:
                raise CommandError(
                    f"No product endpoint #{endpoint}. See Console -> Product webhook endpoints."
                )
        else:
            enabled = list(ProductEndpoint.objects.filter(enabled=True).order_by("pk")[:2])
            if not enabled:
                raise CommandError(
                    "No enabled product endpoint. Add one in the console "
                    "(/admin/console/product-endpoints/) first."
                )
            if len(enabled) > 1:
                raise CommandError("Several endpoints are enabled: choose one with --endpoint ID.")
            target = enabled[0]
        self.stdout.write(f"POST test.ping to endpoint #{target.pk} ({target.url}) …")
        started = time.monotonic()
        try:
            msg_id, answer = send_test(target)
        except DeliveryError as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            status = f"status {exc.status}" if exc.status else "no answer"
            raise CommandError(
                f"failed after {elapsed} ms ({status}): {exc.developer_message}"
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"ok: status {answer.status} in {answer.milliseconds} ms (webhook-id {msg_id})"
            )
        )
