"""manage.py demo_product --port PORT

The demo's product: a local server (devkit/fakes/product.py) that answers 2xx to every
signed webhook, registered as the console's product endpoint, so the demo's paying
customers are provisioned (``customer.entitled`` answered 2xx) and get their welcome email
as in a real deployment, instead of all waiting in "paid, not yet onboarded". Runs until
stopped (``scripts/demo.sh`` starts it before seeding and stops it on Ctrl-C). Development
only: it refuses production.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devkit.fakes.product import FakeProduct


class Command(BaseCommand):
    help = "Run the demo's product (answers every signed webhook) and register it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=0, help="Port on 127.0.0.1 (0: any).")

    def handle(self, *args: Any, **options: Any) -> None:
        from provisioning.endpoints import new_secret
        from provisioning.models import ProductEndpoint

        if settings.PRODUCTION:
            raise CommandError("demo_product is for the demo and development only.")
        try:
            fake = FakeProduct().start(port=options["port"])
        except OSError as exc:
            raise CommandError(f"Cannot listen on port {options['port']}: {exc}") from exc
        endpoint, created = ProductEndpoint.objects.get_or_create(
            url=fake.endpoint_url,
            defaults={"description": "The demo's product (devkit)", "secret": new_secret()},
        )
        self.stdout.write(
            f"Demo product listening at {fake.endpoint_url} "
            f"({'registered' if created else 'already registered'} as endpoint {endpoint.pk})."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            fake.stop()
