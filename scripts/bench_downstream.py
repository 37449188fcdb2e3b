"""Benchmark: failed-payment webhook received -> ticket exists at the (local) helpdesk.

    .venv/bin/python scripts/bench_downstream.py [--count 60] [--rate 2] [--workers 2]
    make bench-downstream

Starts a fake Zendesk on loopback (devkit/fakes/zendesk.py), real RQ workers
(``manage.py rqworker webhooks sync default``, SimpleWorker, as many as --workers) pointed at it, then posts
signed ``invoice.payment_failed`` events to the real webhook view at --rate per second,
one new Stripe customer each, and waits (bounded) until every ticket exists at the fake.
Prints p50/p95/max of (ticket created at the helpdesk) - (webhook posted).

It writes to the database in DATABASE_URL (bench customers have Stripe ids
``cus_bench...``); ``make bench-downstream`` points it at its own database
(``switchboard_bench_downstream``) and Redis database (9), never production. The CRM uses the local
logging implementation, so the figure is the helpdesk path alone, under the default
rate limits (Zendesk 12 requests/s).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ZENDESK_EMAIL = "bench-agent@example.test"
ZENDESK_TOKEN = "bench-zendesk-token"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60, help="failed-payment webhooks to send")
    parser.add_argument("--rate", type=float, default=2.0, help="webhooks per second")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up after (s)")
    args = parser.parse_args()

    from devkit.fakes.zendesk import FakeZendesk

    zendesk = FakeZendesk(email=ZENDESK_EMAIL, token=ZENDESK_TOKEN).start()
    os.environ.update(
        {
            "ZENDESK_BASE_URL": zendesk.url,
            "ZENDESK_EMAIL": ZENDESK_EMAIL,
            "ZENDESK_TOKEN": ZENDESK_TOKEN,
            "HUBSPOT_TOKEN": "",
            "EMAIL_URL": "dummymail://",
            "LOG_LEVEL": "WARNING",
            "STRIPE_MIRROR_ENABLED": "false",
        }
    )

    import django

    django.setup()
    import django_rq
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from rq import Worker

    from config.queueing import QUEUE_NAMES
    from devkit import stripe_events as events
    from devkit.signing import signed

    connection = django_rq.get_connection("sync")
    for name in QUEUE_NAMES:
        if django_rq.get_queue(name).count:
            print(f"queue {name} is not empty in {settings.REDIS_URL}: use a quiet Redis database")
            return 2
    out = __import__("io").StringIO()
    call_command("stripe_webhook_setup", "--base-url", "http://testserver", stdout=out)
    path = out.getvalue().strip().splitlines()[-1].removeprefix("http://testserver")

    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rqworker",
                *QUEUE_NAMES,
                "--worker-class",
                "rq.worker.SimpleWorker",
            ],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(args.workers)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=connection)) < args.workers:
            if time.monotonic() > deadline:
                print("workers did not start")
                return 1
            time.sleep(0.2)

        client = Client()
        sent: dict[str, float] = {}  # ticket external id -> time the webhook was posted
        started = time.monotonic()
        run = int(time.time())
        for n in range(args.count):
            customer_id = f"cus_bench{run}x{n:05d}"
            invoice = events.invoice(
                customer_id,
                subscription_id=f"sub_bench{run}x{n:05d}",
                status="open",
                invoice_id=f"in_bench{run}x{n:05d}",
            )
            body, header = signed(
                events.event("invoice.payment_failed", invoice), settings.STRIPE_WEBHOOK_SECRET
            )
            posted = time.time()
            response = client.post(
                path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
            )
            if response.status_code != 200:
                print(f"webhook answered {response.status_code}: {response.content[:200]!r}")
                return 1
            sent[f"payment_failed:{invoice['id']}"] = posted
            next_at = started + (n + 1) / args.rate
            time.sleep(
                max(0.0, next_at - time.monotonic())
            )  # pacing the load, not waiting for work

        deadline = time.monotonic() + args.timeout
        latencies: dict[str, float] = {}
        while len(latencies) < len(sent) and time.monotonic() < deadline:
            with zendesk.lock:
                for ticket_id, ticket in zendesk.tickets.items():
                    key = ticket.get("external_id")
                    if key in sent and key not in latencies:
                        latencies[key] = zendesk.created_at[ticket_id] - sent[key]
            time.sleep(0.1)  # polling the fake helpdesk, bounded by --timeout
        values = list(latencies.values())
        print(
            f"webhook -> ticket at helpdesk: {len(values)}/{len(sent)} tickets, "
            f"{args.rate:g} webhooks/s, {args.workers} workers, "
            f"Zendesk limit {settings.SYNC_RATE_LIMITS['zendesk']:g} req/s"
        )
        if not values:
            return 1
        print(
            f"p50 {statistics.median(values):.3f} s   p95 {percentile(values, 95):.3f} s   "
            f"max {max(values):.3f} s   min {min(values):.3f} s"
        )
        duplicates = len(zendesk.tickets) - len(
            {t.get("external_id") for t in zendesk.tickets.values()}
        )
        print(f"helpdesk requests {len(zendesk.requests)}, duplicate tickets {duplicates}")
        return 0 if len(values) == len(sent) else 1
    finally:
        for worker in workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        zendesk.stop()


if __name__ == "__main__":
    sys.exit(main())
