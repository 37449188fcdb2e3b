"""Benchmark: failed payments -> tickets at the helpdesk and contacts in the CRM, against
fakes that enforce the smallest paid plans' limits, with Switchboard's default limits.

    .venv/bin/python scripts/bench_downstream.py [--count 100] [--rate 4] [--again-rate 12]
    make bench-downstream

Starts a fake Zendesk (Team plan: 200 requests/min) and a fake HubSpot (Starter private
app: 100 requests per 10 s, search 4/s) on loopback (devkit/fakes/), both answering 429 as
the vendors do past their limits, then real RQ workers (``manage.py rqworker webhooks sync
default``, SimpleWorker, as many as --workers) and one ``run_scheduler``. Two phases of
signed ``invoice.payment_failed`` webhooks go to the real webhook view:

1. ``--count`` new customers at ``--rate``/s: each is a contact search and create at
   HubSpot (search-bound: 4/s) and a requester lookup, requester and ticket at Zendesk;
2. once every ticket is at the helpdesk, the same customers are renamed in Stripe
   (``customer.updated``) at ``--again-rate``/s: one PATCH of a known contact each, so
   HubSpot's 100 per 10 s is the bound.

It waits (bounded) until every ticket exists at the fake and every contact is up to
date, then prints p50/p95/max of (ticket created at the helpdesk) - (webhook posted) and,
per limit, the busiest window seen *by the vendor* against the plan's count: saturated
means the busiest window used >= 90% of it; any 429 or a window over the count is a MISS.

It writes to the database in DATABASE_URL (bench customers have Stripe ids
``cus_bench...``); ``make bench-downstream`` points it at its own database
(``switchboard_bench_downstream``) and Redis database (9), never production.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
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
    parser.add_argument("--count", type=int, default=100, help="customers")
    parser.add_argument("--rate", type=float, default=4.0, help="phase 1 webhooks per second")
    parser.add_argument(
        "--again-rate", type=float, default=12.0, help="phase 2 webhooks per second"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="RQ worker processes (a worker waiting for a rate-limit slot sleeps, costing no "
        "CPU; with fewer, HubSpot rows wait behind Zendesk's slower limit)",
    )
    parser.add_argument(
        "--renames", type=int, default=3, help="phase 2 rounds of renaming every customer"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    args = parser.parse_args()

    from devkit.fakes.hubspot import SEARCH, FakeHubSpot
    from devkit.fakes.zendesk import FakeZendesk

    # Ids the bench database has not seen: customers of earlier runs keep their links.
    first_id = int(time.time()) * 1000
    zendesk = FakeZendesk(
        email=ZENDESK_EMAIL, token=ZENDESK_TOKEN, plan="team", first_id=first_id
    ).start()
    agent = zendesk.add_user(name="Bench Agent", email="agent@bench.example.test", role="agent")
    groups = {
        queue: zendesk.add_group(queue, members=(agent["id"],))
        for queue in ("billing", "disputes", "retention", "human_review")
    }
    hubspot = FakeHubSpot(plan="starter", first_id=first_id).start()
    os.environ.update(
        {
            "ZENDESK_BASE_URL": zendesk.url,
            "ZENDESK_EMAIL": ZENDESK_EMAIL,
            "ZENDESK_TOKEN": ZENDESK_TOKEN,
            "ZENDESK_GROUP_IDS": ",".join(f"{q}={g}" for q, g in groups.items()),
            "HUBSPOT_BASE_URL": hubspot.url,
            "HUBSPOT_TOKEN": hubspot.token,
            "EMAIL_URL": "dummymail://",
            "LOG_LEVEL": "WARNING",
            "STRIPE_MIRROR_ENABLED": "false",
            "RECONCILE_INTERVAL_MINUTES": "0",
            "SWEEP_INTERVAL_SECONDS": "2",
        }
    )
    for name in ("HUBSPOT_REQUESTS_PER_10_SECONDS", "HUBSPOT_SEARCH_PER_SECOND"):
        os.environ.pop(name, None)  # the defaults are what is measured
    os.environ.pop("ZENDESK_REQUESTS_PER_MINUTE", None)

    import django

    django.setup()
    import django_rq
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from rq import Worker

    from billing.models import EventStatus, StripeEvent
    from config.queueing import QUEUE_NAMES
    from delivery.models import OutboxMessage, OutboxState
    from devkit import stripe_events as events
    from devkit.signing import signed

    # Work an earlier run left unfinished would be swept into this run's figures.
    leftover = (
        StripeEvent.objects.filter(status__in=[EventStatus.RECEIVED, EventStatus.FAILED]).count()
        + OutboxMessage.objects.filter(
            state__in=[OutboxState.PENDING, OutboxState.FAILED, OutboxState.DELIVERING]
        ).count()
    )
    if leftover:
        print(
            f"{leftover} events or deliveries of an earlier run are unfinished in this database: "
            "drop it (make bench-downstream creates it again) for figures of this run alone"
        )
        return 2
    connection = django_rq.get_connection("sync")
    for name in QUEUE_NAMES:
        if django_rq.get_queue(name).count:
            print(f"queue {name} is not empty in {settings.REDIS_URL}: use a quiet Redis database")
            return 2
    out = __import__("io").StringIO()
    call_command("stripe_webhook_setup", "--base-url", "http://testserver", stdout=out)
    path = out.getvalue().strip().splitlines()[-1].removeprefix("http://testserver")

    def spawn(*command: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    processes = [
        spawn("rqworker", *QUEUE_NAMES, "--worker-class", "rq.worker.SimpleWorker")
        for _ in range(args.workers)
    ]
    processes.append(spawn("run_scheduler"))
    try:
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=connection)) < args.workers:
            if time.monotonic() > deadline:
                print("workers did not start")
                return 1
            time.sleep(0.2)

        client = Client()
        sent: dict[str, float] = {}  # ticket external id -> time the webhook was posted
        run = int(time.time())
        customers = [f"cus_bench{run}x{n:05d}" for n in range(args.count)]

        def post_phase(phase: int, rate: float) -> bool:
            started = time.monotonic()
            rounds = 1 if phase == 1 else args.renames
            for n, customer_id in enumerate(customers * rounds):
                if phase == 1:
                    invoice = events.invoice(
                        customer_id,
                        subscription_id=f"sub_bench{run}x{n:05d}",
                        status="open",
                        invoice_id=f"in_bench{run}x{n:05d}",
                    )
                    event = events.event("invoice.payment_failed", invoice)
                else:
                    renamed = events.customer(customer_id, email="", name=f"Bench renamed {n}")
                    event = events.event("customer.updated", renamed)
                body, header = signed(event, settings.STRIPE_WEBHOOK_SECRET)
                posted = time.time()
                response = client.post(
                    path, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
                )
                if response.status_code != 200:
                    print(f"webhook answered {response.status_code}: {response.content[:200]!r}")
                    return False
                if phase == 1:
                    sent[f"payment_failed:{invoice['id']}"] = posted
                next_at = started + (n + 1) / rate
                time.sleep(max(0.0, next_at - time.monotonic()))  # pacing the load
            return True

        def tickets_seen(latencies: dict[str, float]) -> None:
            with zendesk.lock:
                for ticket_id, ticket in zendesk.tickets.items():
                    key = ticket.get("external_id")
                    if key in sent and key not in latencies:
                        latencies[key] = zendesk.created_at[ticket_id] - sent[key]

        def contacts_done() -> int:
            with hubspot.lock:
                return sum(
                    1
                    for c in hubspot.contacts.values()
                    if "switchboard_customer_id" in c["properties"]
                )

        latencies: dict[str, float] = {}
        started = time.monotonic()
        if not post_phase(1, args.rate):
            return 1
        # Phase 2 starts once every ticket and contact exists: its updates are PATCHes, and
        # no worker is still waiting for a Zendesk slot.
        deadline = time.monotonic() + args.timeout
        while (
            len(latencies) < len(sent) or contacts_done() < args.count
        ) and time.monotonic() < deadline:
            tickets_seen(latencies)
            time.sleep(0.2)  # polling the fakes, bounded by --timeout
        if not post_phase(2, args.again_rate):
            return 1

        def crm_waiting() -> bool:
            return OutboxMessage.objects.filter(
                channel="crm",
                state__in=[OutboxState.PENDING, OutboxState.FAILED, OutboxState.DELIVERING],
            ).exists()

        from rq.registry import StartedJobRegistry

        queues = [django_rq.get_queue(name) for name in QUEUE_NAMES]

        def busy() -> bool:
            return crm_waiting() or any(
                queue.count or StartedJobRegistry(queue=queue).count for queue in queues
            )

        quiet = 0
        while quiet < 3 and time.monotonic() < deadline:
            quiet = 0 if busy() else quiet + 1
            time.sleep(0.5)  # polling the queues and the outbox, bounded by --timeout
        patched = len(hubspot.calls("PATCH"))
        elapsed = time.monotonic() - started
        values = list(latencies.values())
        print(
            f"{len(values)}/{len(sent)} tickets at the helpdesk, {contacts_done()}/{args.count} "
            f"contacts, {patched} contact updates in {elapsed:.0f} s; {args.count} failed payments "
            f"of new customers at {args.rate:g}/s, then {args.count * args.renames} renames at "
            f"{args.again_rate:g}/s; {args.workers} workers"
        )
        if not values:
            return 1
        print(
            f"webhook -> ticket at helpdesk: p50 {statistics.median(values):.1f} s   "
            f"p95 {percentile(values, 95):.1f} s   max {max(values):.1f} s"
        )
        duplicates = len(zendesk.tickets) - len(
            {t.get("external_id") for t in zendesk.tickets.values()}
        )
        limits = [
            ("HubSpot (Starter private app)", hubspot, "", 10.0, 100),
            ("HubSpot search", hubspot, SEARCH, 1.0, 4),
            ("Zendesk (Team)", zendesk, "", 60.0, 200),
        ]
        print(f"{'limit':32} {'plan':>10} {'busiest window':>15} {'use':>5} {'429s':>5}  verdict")
        ok = len(values) == len(sent) and duplicates == 0
        for label, fake, prefix, window, count in limits:
            peak = fake.peak(window, path=prefix)
            throttled = len(fake.calls(path=prefix, status=429))
            within = peak <= count and throttled == 0
            saturated = peak >= 0.9 * count
            ok = ok and within
            verdict = ("PASS" if within else "MISS") + (
                ", saturated" if saturated else ", not saturated"
            )
            print(
                f"{label:32} {count:>4}/{window:g}s {peak:>11}/{count:<3} "
                f"{peak / count:>5.0%} {throttled:>5}  {verdict}"
            )
        for label, fake in (("HubSpot", hubspot), ("Zendesk", zendesk)):
            kinds = Counter(
                f"{r.method} {'/'.join(p if not p.isdigit() else '{id}' for p in r.path.split('/'))}"
                for r in fake.requests
            )
            print(f"{label} requests: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
        print(
            f"requests: HubSpot {len(hubspot.requests)}, Zendesk {len(zendesk.requests)}; "
            f"duplicate tickets {duplicates}; client limits "
            + ", ".join(f"{k} {v:g}/s" for k, v in settings.SYNC_RATE_LIMITS.items())
            + f" x {settings.SYNC_RATE_HEADROOM:g}"
        )
        return 0 if ok else 1
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        zendesk.stop()
        hubspot.stop()


if __name__ == "__main__":
    sys.exit(main())
