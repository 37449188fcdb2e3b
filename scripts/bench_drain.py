"""``make bench-drain``: what the events drain and the follow-up drain cost per event, in
one process, without HTTP or RQ (a command that prints figures, not a test).

It recreates its own database (``BENCH_DATABASE_URL``, default
``switchboard_bench_drain``, cloned from the migrated template ``make bench`` keeps),
stores ``--customers`` customers' first events and drains them (they create the
customers), then stores ``--events`` more of ``make bench``'s mix (``customer.updated``,
``customer.subscription.updated``, ``invoice.paid``) for those known customers and
drains them twice over: with the batch path for known customers
(``billing/services.py _events_fast``) and, on a copy of the same events, one customer
at a time as before it. It prints milliseconds (wall and CPU of this process) and SQL
statements per event for each, then the follow-up drain's per run. The dj-stripe mirror
is off (it needs a Stripe to fetch from; ``make bench`` counts it). Redis:
``BENCH_REDIS_URL`` (default database 13), flushed first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/switchboard_bench_drain"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_drain", description=__doc__)
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--events", type=int, default=1200)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    db_name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    if "bench" not in db_name:
        raise SystemExit(f"BENCH_DATABASE_URL must name a bench database (got {db_name!r})")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scripts.bench.settings_bench",
        "BENCH_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
        "STRIPE_MIRROR_ENABLED": "false",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from scripts.bench.__main__ import prepare_database

    prepare_database(env, db_name)

    import django

    django.setup()
    import django_rq
    from django.db import connection

    from billing import services
    from devkit import stripe_events as events
    from devkit.signing import encode

    django_rq.get_connection("default").flushdb()  # the bench's own Redis database

    def ingest(built: list[dict]) -> None:
        for event in built:
            services.event_ingest(payload=event, body=encode(event).decode())

    def measure(drain_batch) -> tuple[int, float, float, int]:
        statements = 0

        def count(execute, sql, params, many, context):
            nonlocal statements
            statements += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            wall, cpu = time.perf_counter(), time.process_time()
            total = 0
            while taken := drain_batch():
                total += taken
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return total, wall, cpu, statements

    base = int(time.time()) - 86400
    seeded = []
    for n in range(args.customers):
        cus = f"cus_drainbench{n}"
        sub = events.subscription(cus, sub_id=f"sub_drainbench{n}")
        seeded.append(
            {
                "customer": events.customer(cus, email=f"drain{n}@example.test", name=f"D {n}"),
                "subscription": sub,
                "invoice": events.invoice(cus, subscription_id=sub["id"]),
            }
        )
    ingest([events.event("customer.created", s["customer"], created=base - 10) for s in seeded])
    measure(services.events_drain_batch)
    kinds = (
        ("customer.updated", "customer"),
        ("customer.subscription.updated", "subscription"),
        ("invoice.paid", "invoice"),
    )

    def burst(tag: str) -> list[dict]:
        return [
            events.event(
                kinds[(i // args.customers) % 3][0],
                seeded[i % args.customers][kinds[(i // args.customers) % 3][1]],
                created=base + i,
                event_id=f"evt_drainbench{tag}{i:07d}",
            )
            for i in range(args.events)
        ]

    rows = []
    ingest(burst("a"))
    rows.append(("events drain, batch path", *measure(services.events_drain_batch)))
    follow_ups = measure(services.handler_runs_drain_batch)
    fast_eligible = services._fast_eligible
    services._fast_eligible = lambda key, group: False
    try:
        ingest(burst("b"))
        rows.append(("events drain, one at a time", *measure(services.events_drain_batch)))
    finally:
        services._fast_eligible = fast_eligible

    print(f"{args.events} events of {args.customers} known customers, database {db_name}:")
    print(f"{'':30}{'events':>8}{'ms/event':>10}{'CPU ms/ev':>11}{'SQL/event':>11}")
    for name, total, wall, cpu, queries in rows:
        print(
            f"{name:30}{total:>8}{wall / total * 1000:>10.2f}{cpu / total * 1000:>11.2f}"
            f"{queries / total:>11.2f}"
        )
    runs, wall, cpu, queries = follow_ups
    print(
        f"follow-up drain (mirror off): {runs} runs, {wall / runs * 1000:.2f} ms/run, "
        f"CPU {cpu / runs * 1000:.2f} ms/run, {queries / runs:.2f} SQL/run, "
        f"{wall / args.events * 1000:.2f} ms/event"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
