"""manage.py console_bench --url http://127.0.0.1:8765: p50/p95 of the console under load.

Drives a running server (make bench-console starts gunicorn on the seeded benchmark
database) with ``--concurrency`` client threads, each on its own keep-alive HTTP
connection, and prints latency percentiles for three targets:

- the operations dashboard, 7-day window (the heaviest) and 24-hour window;
- a customer 360 page (the customer's admin page: header + timeline), random customers;
- the account-state API, random customers and random id forms.

It logs in by creating a session for a benchmark owner directly in the database it
shares with the server, and creates an API token for the API target. Every response must
be a 200; errors are counted and reported. Targets: API p95 <= 50 ms, 360 p95 <= 150 ms,
dashboard p95 <= 300 ms.
"""

from __future__ import annotations

import http.client
import random
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError, CommandParser

TARGETS = {"api": 50.0, "customer_360": 150.0, "dashboard_7d": 300.0, "dashboard_24h": 300.0}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(p * (len(ordered) - 1))), len(ordered) - 1)]


class Command(BaseCommand):
    help = "Measure dashboard, customer 360 and account-state API latency under concurrent load."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8765")
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--requests", type=int, default=200, help="per target")
        parser.add_argument("--seed", type=int, default=6)

    def handle(
        self, *args: Any, url: str, concurrency: int, requests: int, seed: int, **options: Any
    ) -> None:
        if "bench" not in settings.DATABASES["default"]["NAME"]:
            raise CommandError("run against the benchmark database (its name contains 'bench')")
        from console.api_tokens import api_token_create
        from customers.models import Customer

        owner = self._owner()
        session = SessionStore()
        session[SESSION_KEY] = str(owner.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = owner.get_session_auth_hash()
        session.save()
        _, token = api_token_create(actor=owner, name="console benchmark")

        rng = random.Random(seed)
        total = Customer.objects.count()
        if not total:
            raise CommandError("no customers: run console_bench_seed first")
        sample = list(
            Customer.objects.order_by("?").values_list(
                "pk", "stripe_customer_id", "product_user_id"
            )[:500]
        )
        cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"}
        bearer = {"Authorization": f"Bearer {token}"}

        def api_path() -> str:
            pk, stripe_id, product_id = rng.choice(sample)
            return f"/api/v1/customers/{rng.choice([str(pk), stripe_id, product_id])}/state"

        plans: dict[str, tuple[Callable[[], str], dict[str, str]]] = {
            "api": (api_path, bearer),
            "customer_360": (
                lambda: f"/admin/console/customers/{rng.choice(sample)[0]}/",
                cookie,
            ),
            "dashboard_7d": (lambda: "/admin/console/?window=7d", cookie),
            "dashboard_24h": (lambda: "/admin/console/?window=24h", cookie),
        }
        parsed = urlparse(url)
        self.stdout.write(
            f"{total} customers; {concurrency} concurrent clients, {requests} "
            f"requests per target against {url}"
        )
        self.stdout.write(
            f"{'target':<15}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'req/s':>8}"
            f"{'errors':>8}  target p95"
        )
        for name, (path_fn, headers) in plans.items():
            paths = [path_fn() for _ in range(requests + 2 * concurrency)]
            latencies, errors, elapsed = self._run(
                parsed, paths, headers, concurrency, warmup=2 * concurrency
            )
            p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
            verdict = "ok" if p95 <= TARGETS[name] else "MISSED"
            self.stdout.write(
                f"{name:<15}{p50:9.1f}{p95:9.1f}{max(latencies):9.1f}"
                f"{len(latencies) / elapsed:8.1f}{errors:8d}  <= {TARGETS[name]:.0f} {verdict}"
            )

    def _owner(self) -> Any:
        from django.contrib.auth import get_user_model

        user, _ = get_user_model().objects.get_or_create(
            username="bench-owner@bench.test",
            defaults={"email": "bench-owner@bench.test", "is_staff": True},
        )
        user.groups.add(Group.objects.get(name="owner"))
        return user

    def _run(
        self,
        parsed: Any,
        paths: list[str],
        headers: dict[str, str],
        concurrency: int,
        *,
        warmup: int,
    ) -> tuple[list[float], int, float]:
        local = threading.local()
        errors = 0
        lock = threading.Lock()

        def fetch(path: str) -> float:
            nonlocal errors
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(
                    parsed.hostname, parsed.port, timeout=30
                )
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                local.conn = None
                ok = False
            took = (time.perf_counter() - started) * 1000
            if not ok:
                with lock:
                    errors += 1
            return took

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(fetch, paths[:warmup]))
            errors = 0
            started = time.perf_counter()
            latencies = list(pool.map(fetch, paths[warmup:]))
            elapsed = time.perf_counter() - started
        return latencies, errors, elapsed
