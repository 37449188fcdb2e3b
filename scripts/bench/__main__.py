"""``python -m scripts.bench``: run the webhook benchmark and print one table (see __init__)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from devkit.localstripe import free_port
from scripts.bench import loadgen
from scripts.bench.procs import Procs, wait_http

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SECRET_KEY = "sk_test_switchboardBenchKey0123456789"
WEBHOOK_SECRET = "whsec_bench_0123456789abcdef"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/switchboard_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    p.add_argument("--rate", type=float, default=200.0, help="fixed-rate phase, events/s")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each load phase")
    p.add_argument(
        "--conns",
        type=int,
        default=24,
        help="connections at saturation (enough for every gunicorn thread: a few keep-alive "
        "connections split unevenly over the worker processes, and the split decides)",
    )
    p.add_argument(
        "--sat-rounds",
        type=int,
        default=4,
        help="saturation rounds per path, taken in turn (bare, ours, ...); the median counts",
    )
    p.add_argument(
        "--e2e-rates",
        default="100,300",
        help="end-to-end phases, events/s, comma-separated (each --seconds long)",
    )
    p.add_argument("--customers", type=int, default=40, help="customers seeded in localstripe")
    p.add_argument("--web-workers", type=int, default=3, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    p.add_argument("--rq-workers", type=int, default=2)
    p.add_argument(
        "--worker-class",
        default="rq.worker.SimpleWorker",
        help="RQ worker class (rq.Worker forks a work horse per job)",
    )
    p.add_argument("--skip-djstripe", action="store_true", help="skip dj-stripe's stock path")
    return p.parse_args()


# --- database -------------------------------------------------------------------------


def _pg(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", user="postgres", dbname=dbname, autocommit=True)


def _migrations_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(path.read_bytes())
    from importlib.metadata import version

    digest.update(version("dj-stripe").encode())
    return digest.hexdigest()[:16]


def prepare_database(env: dict[str, str], name: str) -> None:
    """A fresh, migrated bench database, cloned from a cached template (``<name>_tpl``)
    when possible."""
    import subprocess

    template = f"{name}_tpl"

    wanted = _migrations_hash()
    with _pg() as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [template],
        ).fetchone()
        if row is None or row[0] != wanted:
            print("Migrating a template database (dj-stripe's migrations take about a minute)...")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(template))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
            subprocess.run(
                [PY, "manage.py", "migrate", "--no-input", "-v", "0"],
                cwd=ROOT,
                env={
                    **env,
                    "BENCH_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{template}",
                },
                check=True,
            )
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(template), sql.Literal(wanted)
                )
            )
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


# --- Stripe data ----------------------------------------------------------------------


def seed_localstripe(count: int) -> list[dict[str, Any]]:
    """Customers with a card and a monthly subscription; returns their current objects."""
    import stripe

    plan = stripe.Plan.create(
        id="plan_bench",
        amount=2000,
        currency="usd",
        interval="month",
        product={"name": "Bench"},
        nickname="Bench",
    )
    seeded = []
    for n in range(count):
        pm = stripe.PaymentMethod.create(
            type="card",
            card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        )
        customer = stripe.Customer.create(
            email=f"bench{n}@example.test",
            name=f"Bench {n}",
            payment_method=pm.id,
            invoice_settings={"default_payment_method": pm.id},
        )
        sub = stripe.Subscription.create(customer=customer.id, items=[{"plan": plan.id}])
        invoice = stripe.Invoice.retrieve(sub.latest_invoice)
        seeded.append(
            {
                "customer": customer.to_dict(for_json=True),
                "subscription": sub.to_dict(for_json=True),
                "invoice": invoice.to_dict(for_json=True),
            }
        )
    return seeded


def build_events(seeded: list[dict[str, Any]], count: int, tag: str) -> list[dict[str, Any]]:
    """``count`` events about the seeded objects, each its own second (Stripe's order)."""
    from devkit import stripe_events as events

    kinds = (
        ("customer.updated", "customer"),
        ("customer.subscription.updated", "subscription"),
        ("invoice.paid", "invoice"),
    )
    base = int(time.time()) - 86400
    built = []
    for i in range(count):
        objects = seeded[i % len(seeded)]
        event_type, key = kinds[(i // len(seeded)) % len(kinds)]
        built.append(
            events.event(
                event_type, objects[key], created=base + i, event_id=f"evt_bench{tag}{i:07d}"
            )
        )
    return built


# --- load -----------------------------------------------------------------------------


def _items(built: list[dict[str, Any]], path: str) -> list[loadgen.Item]:
    from devkit.signing import encode

    return [loadgen.Item(e["id"], path, encode(e)) for e in built]


def _sign(body: bytes) -> str:
    from devkit.signing import signature_header

    return signature_header(body, WEBHOOK_SECRET)


def _without_collector(go: Callable[[], Coroutine[Any, Any, loadgen.Run]]) -> loadgen.Run:
    """Run one load phase with Python's cyclic collector off. This process holds Django
    and every phase's events: a full collection here paused the load generator for 100 to
    250 ms, and every request due meanwhile counted the pause as the server's latency
    (the web workers' own logs showed them answering in a few ms). A phase is bounded in
    time and count; the collector runs between phases."""
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(go())
    finally:
        gc.enable()


def run_fixed(port: int, items: list[loadgen.Item], rate: float, seconds: float) -> loadgen.Run:
    async def go() -> loadgen.Run:
        client = loadgen.Client("127.0.0.1", port, max_conns=64, sign=_sign, timeout=60)
        try:
            return await loadgen.fixed_rate(client, items, rate=rate, max_seconds=seconds)
        finally:
            client.close()

    return _without_collector(go)


def run_saturation(port: int, items: list[loadgen.Item], conns: int, seconds: float) -> loadgen.Run:
    async def go() -> loadgen.Run:
        client = loadgen.Client("127.0.0.1", port, max_conns=conns, sign=_sign, timeout=60)
        try:
            return await loadgen.closed_loop(client, items, concurrency=conns, max_seconds=seconds)
        finally:
            client.close()

    return _without_collector(go)


def proxy_calls(proxy_url: str) -> int:
    with urllib.request.urlopen(f"{proxy_url}/__bench__/counts", timeout=5) as response:
        return sum(json.load(response).values())


def rq_job_ids() -> set[bytes]:
    """Every job RQ holds in the bench's Redis database (queued, running or finished: a
    finished job's hash is kept for its result TTL, 500 s, longer than a phase)."""
    import django_rq

    redis = django_rq.get_connection("default")
    return {key for key in redis.scan_iter("rq:job:*", count=1000) if key.count(b":") == 2}


def ms(values: list[float], p: float) -> float:
    return loadgen.percentile(values, p) * 1000


def summarize(run: loadgen.Run) -> dict[str, float]:
    lat = [r.latency for r in run.ok]
    return {
        "p50": ms(lat, 50),
        "p95": ms(lat, 95),
        "p99": ms(lat, 99),
        "throughput": run.throughput,
        "ok": len(run.ok),
        "sent": len(run.results),
        "errors": len(run.results) - len(run.ok),
    }


# --- main -----------------------------------------------------------------------------


def _web(procs: Procs, args: argparse.Namespace, web_port: int):
    return procs.start(
        "web",
        [
            PY,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-b",
            f"127.0.0.1:{web_port}",
            "-w",
            str(args.web_workers),
            "-k",
            "gthread",
            "--threads",
            str(args.threads),
            "--keep-alive",
            "5",
            "--log-level",
            "warning",
            "--timeout",
            "120",
        ],
    )


def main() -> int:
    args = parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    db_name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    if "bench" not in db_name:
        raise SystemExit(f"BENCH_DATABASE_URL must name a bench database (got {db_name!r})")
    ls_port, proxy_port, web_port = free_port(), free_port(), free_port()
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "scripts.bench.settings_bench",
        "BENCH_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
        "BENCH_REDIS_URL": redis_url,
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": proxy_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "HANDLER_MAX_ATTEMPTS": "8",
    }
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
    procs = Procs(run_dir, env, ROOT)
    print(f"Bench run directory (logs): {run_dir}")
    print(f"Database {db_name}, Redis {redis_url}")
    try:
        prepare_database(env, db_name)

        import django

        django.setup()
        import django_rq
        import stripe
        from django.core.management import call_command
        from django.db import connection
        from djstripe.models import WebhookEndpoint

        from billing.adapters import stripe_client
        from devkit.localstripe import djstripe_account_ensure
        from scripts.bench.bare import TABLE_DDL

        django_rq.get_connection("default").flushdb()  # the bench's own Redis database
        localstripe = procs.start(
            "localstripe", [PY, "-m", "devkit.localstripe", "--port", str(ls_port)]
        )
        wait_http(f"http://127.0.0.1:{ls_port}/js.stripe.com/v3/", localstripe)
        proxy = procs.start(
            "proxy",
            [
                PY,
                "-m",
                "scripts.bench.proxy",
                "--port",
                str(proxy_port),
                "--upstream",
                f"http://127.0.0.1:{ls_port}",
            ],
        )
        wait_http(f"{proxy_url}/__bench__/counts", proxy)

        stripe_client.configure()
        stripe.api_base = f"http://127.0.0.1:{ls_port}"  # seeding is not counted
        out = open(run_dir / "setup.log", "w")  # noqa: SIM115 - closed with the run
        call_command("stripe_webhook_setup", base_url=f"http://127.0.0.1:{web_port}", stdout=out)
        djstripe_account_ensure(SECRET_KEY)
        with connection.cursor() as cursor:
            cursor.execute(TABLE_DDL)
        endpoint = WebhookEndpoint.objects.get()
        uuid = endpoint.djstripe_uuid
        print(f"Seeding {args.customers} customers with subscriptions in localstripe...")
        seeded = seed_localstripe(args.customers)
        connection.close()

        web = _web(procs, args, web_port)
        wait_http(f"http://127.0.0.1:{web_port}/healthz", web)

        paths = {
            "ours": f"/stripe/webhook/{uuid}/",
            "djstripe": f"/djstripe/webhook/{uuid}/",
            "bare": f"/bench/bare/{uuid}/",
        }
        n_fixed = int(args.rate * args.seconds)
        round_seconds = max(args.seconds / 2, 2.0)
        table: dict[str, dict[str, float]] = {}
        variants = ["bare", "ours"] + ([] if args.skip_djstripe else ["djstripe"])
        calls: dict[str, int] = dict.fromkeys(variants, 0)
        rounds: dict[str, list[loadgen.Run]] = {v: [] for v in variants}
        sat_jobs: dict[str, int] = dict.fromkeys(variants, 0)
        # bare and ours side by side; dj-stripe's path last and apart: its requests queue
        # for tens of seconds and would still hold the web workers in the next path's round.
        groups = [["bare", "ours"]] + ([["djstripe"]] if "djstripe" in variants else [])
        for group in groups:
            for variant in group:
                warm = _items(build_events(seeded, 50, f"w{variant}"), paths[variant])
                run_saturation(web_port, warm, 4, 10)
                fixed_items = _items(build_events(seeded, n_fixed, f"f{variant}"), paths[variant])
                print(f"  {variant}: {n_fixed} events at {args.rate:.0f}/s ...")
                calls_before = proxy_calls(proxy_url)
                fixed = summarize(run_fixed(web_port, fixed_items, args.rate, args.seconds))
                calls[variant] += proxy_calls(proxy_url) - calls_before
                table[variant] = {f"fixed_{k}": v for k, v in fixed.items()}
            # Saturation in rounds, the paths in turn, each round on new connections: the
            # machine's pace drifts over a run and keep-alive connections land unevenly on
            # the gunicorn processes, so one long phase per path compares two draws; the
            # median of interleaved rounds compares the paths.
            print(
                f"  saturation, {' and '.join(group)}: {args.sat_rounds} rounds of "
                f"{round_seconds:.0f}s, {args.conns} connections, in turn ..."
            )
            for r in range(args.sat_rounds):
                for variant in group:
                    items = _items(
                        build_events(seeded, int(round_seconds * 1500), f"s{variant}{r}"),
                        paths[variant],
                    )
                    calls_before = proxy_calls(proxy_url)
                    jobs_before = rq_job_ids()
                    run = run_saturation(web_port, items, args.conns, round_seconds)
                    sat_jobs[variant] += len(rq_job_ids() - jobs_before)
                    calls[variant] += proxy_calls(proxy_url) - calls_before
                    rounds[variant].append(run)
        for variant in variants:
            runs = rounds[variant]
            pooled = loadgen.Run(
                results=[res for run in runs for res in run.results],
                elapsed=sum(run.elapsed for run in runs),
                offered=sum(run.offered for run in runs),
                connections=args.conns,
            )
            sat = summarize(pooled)
            sat["throughput"] = loadgen.percentile([run.throughput for run in runs], 50)
            handled = table[variant]["fixed_ok"] + sat["ok"]
            table[variant].update(
                {
                    **{f"sat_{k}": v for k, v in sat.items()},
                    "sat_rounds": [run.throughput for run in runs],
                    "calls_per_event": calls[variant] / handled if handled else float("nan"),
                    "jobs_per_event": sat_jobs[variant] / sat["ok"] if sat["ok"] else float("nan"),
                }
            )
        procs.stop(web)

        # End to end: our path with RQ workers running, at fixed rates. The acknowledgement
        # phases left thousands of events nobody processed (no workers ran): they are
        # removed, with their jobs, so the workers start on an empty inbox.
        django_rq.get_connection("default").flushdb()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE billing_stripeevent CASCADE")
        connection.close()
        web = _web(procs, args, web_port)
        wait_http(f"http://127.0.0.1:{web_port}/healthz", web)
        for n in range(args.rq_workers):
            procs.start(
                f"worker{n}",
                [
                    PY,
                    "manage.py",
                    "rqworker",
                    "webhooks",
                    "sync",
                    "default",
                    "--worker-class",
                    args.worker_class,
                ],
            )
        # One event of each kind per customer: the workers then know every customer and
        # its objects, as they would after a day of traffic. The first sight of an invoice
        # costs API calls (the dj-stripe mirror fetches the payment intent and balance
        # transaction it refers to), printed here and not counted in the phases.
        warm_built = build_events(seeded, 3 * len(seeded), "ew")
        calls_before = proxy_calls(proxy_url)
        run_saturation(web_port, _items(warm_built, paths["ours"]), 2, 30)
        # Until the workers are up and have projected the warm-up, then done its follow-ups
        # (before any projection there are no follow-up runs to wait for): the first phase
        # measures the pipeline, not the workers' start.
        warm_keys = [e["id"] for e in warm_built]
        _wait_for_projection(warm_keys, dict.fromkeys(warm_keys, time.time()), timeout=120)
        _wait_for_follow_ups(warm_keys, timeout=60)
        print(
            f"  warm-up: {len(warm_built)} events, one of each kind per customer: "
            f"{proxy_calls(proxy_url) - calls_before} Stripe API calls (first sight of each "
            "customer's objects)"
        )
        e2e: dict[float, dict[str, float]] = {}
        for n, rate in enumerate(float(r) for r in args.e2e_rates.split(",") if r.strip()):
            e2e[rate] = run_e2e(args, web_port, proxy_url, paths["ours"], seeded, rate, f"e{n}")
        print_table(args, table, e2e)
        return 0
    finally:
        procs.stop_all()


def run_e2e(
    args: argparse.Namespace,
    web_port: int,
    proxy_url: str,
    path: str,
    seeded: list[dict[str, Any]],
    rate: float,
    tag: str,
) -> dict[str, float]:
    """One end-to-end phase: events at ``rate`` for ``--seconds``, then wait (bounded)
    until every projection and follow-up run of them has finished."""
    built = build_events(seeded, int(rate * args.seconds), tag)
    print(
        f"  end to end: {len(built)} events at {rate:.0f}/s with "
        f"{args.rq_workers} workers ({args.worker_class}) ..."
    )
    calls_before = proxy_calls(proxy_url)
    jobs_before = rq_job_ids()
    run = run_fixed(web_port, _items(built, path), rate, args.seconds)
    sent_at = {r.key: r.sent_wall for r in run.ok}
    lag, pending = _wait_for_projection(list(sent_at), sent_at, timeout=180)
    left = _wait_for_follow_ups(list(sent_at), timeout=180)
    calls = proxy_calls(proxy_url) - calls_before
    jobs = len(rq_job_ids() - jobs_before)
    out = summarize(run)
    out.update(
        {
            "lag_p50": ms(lag, 50),
            "lag_p95": ms(lag, 95),
            "lag_max": ms(lag, 100),
            "pending": pending,
            "follow_ups_left": left,
            "calls_per_event": calls / max(len(sent_at), 1),
            "jobs_per_event": jobs / max(len(sent_at), 1),
        }
    )
    return out


def _wait_for_projection(
    keys: list[str], sent_at: dict[str, float], *, timeout: float
) -> tuple[list[float], int]:
    """Seconds from send to the customer_projection run finishing, per event (bounded)."""
    from billing.models import HandlerRun, RunStatus

    deadline = time.monotonic() + timeout
    while True:
        done = dict(
            HandlerRun.objects.filter(
                event__stripe_id__in=keys, handler="customer_projection", status=RunStatus.SUCCEEDED
            ).values_list("event__stripe_id", "finished_at")
        )
        if len(done) == len(keys) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # polling the database for the workers' progress, bounded
    lags = [finished.timestamp() - sent_at[key] for key, finished in done.items()]
    return lags, len(keys) - len(done)


def _wait_for_follow_ups(keys: list[str], *, timeout: float) -> int:
    """Wait (bounded) until every handler run of these events has finished, so the Stripe
    API calls of the dj-stripe mirror are counted too; returns how many had not."""
    from billing.models import HandlerRun, RunStatus

    deadline = time.monotonic() + timeout
    while True:
        left = HandlerRun.objects.filter(
            event__stripe_id__in=keys, status__in=[RunStatus.PENDING, RunStatus.STARTED]
        ).count()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)  # polling the database for the workers' progress, bounded


def print_table(
    args: argparse.Namespace,
    table: dict[str, dict[str, float]],
    e2e: dict[float, dict[str, float]],
) -> None:
    print()
    print(
        f"Settings: gunicorn {args.web_workers} workers x {args.threads} threads (gthread, "
        f"keep-alive), persistent database connections (CONN_MAX_AGE 60), "
        f"{os.cpu_count()} cores, localstripe behind a counting proxy."
    )
    header = (
        f"{'path':<34}{'ack p50':>9}{'p95':>9}{'p99':>9}{'errors':>8}"
        f"{'saturation/s':>14}{'sat p99':>9}{'API calls/ev':>14}{'RQ jobs/ev':>12}"
    )
    print(
        f"Acknowledgement at {args.rate:.0f} events/s (fixed rate, open loop; ms) and at "
        f"saturation ({args.conns} connections, median of {args.sat_rounds} rounds; RQ jobs "
        "per event enqueued there):"
    )
    print(header)
    names = {
        "ours": "Switchboard (verify, store, signal)",
        "djstripe": "dj-stripe stock (in-request)",
        "bare": "bare (verify, insert one row)",
    }
    for key, row in table.items():
        print(
            f"{names[key][:33]:<34}{row['fixed_p50']:>9.1f}{row['fixed_p95']:>9.1f}"
            f"{row['fixed_p99']:>9.1f}{int(row['fixed_errors'] + row['sat_errors']):>8}"
            f"{row['sat_throughput']:>14.0f}{row['sat_p99']:>9.1f}"
            f"{row['calls_per_event']:>14.2f}{row['jobs_per_event']:>12.3f}"
        )
    print(
        "Saturation rounds, events/s in the order run: "
        + "; ".join(
            f"{key} " + " ".join(f"{t:.0f}" for t in row["sat_rounds"])
            for key, row in table.items()
        )
    )
    print()
    print(
        f"End to end, {args.rq_workers} RQ workers ({args.worker_class}); received -> "
        "customer updated (projection run finished), then every follow-up run finished:"
    )
    print(
        f"{'rate/s':>8}{'events':>8}{'ack p99':>9}{'e2e p50':>10}{'p95':>9}{'max':>9}"
        f"{'late':>6}{'follow-ups left':>17}{'API calls/ev':>14}{'RQ jobs/ev':>12}"
    )
    for rate, row in e2e.items():
        print(
            f"{rate:>8.0f}{int(row['ok']):>8}{row['p99']:>9.1f}{row['lag_p50']:>10.0f}"
            f"{row['lag_p95']:>9.0f}{row['lag_max']:>9.0f}{int(row['pending']):>6}"
            f"{int(row['follow_ups_left']):>17}{row['calls_per_event']:>14.2f}"
            f"{row['jobs_per_event']:>12.3f}"
        )
    ours, bare = table["ours"], table["bare"]
    checks = [
        (
            f"ack p99 <= 20 ms at {args.rate:.0f} events/s",
            ours["fixed_p99"] <= 20,
            f"{ours['fixed_p99']:.1f} ms",
        ),
        (
            "ingest saturation >= 85% of the bare view",
            ours["sat_throughput"] >= 0.85 * bare["sat_throughput"],
            f"{ours['sat_throughput'] / bare['sat_throughput']:.0%}",
        ),
        (
            "<= 0.1 RQ jobs per event at saturation",
            ours["jobs_per_event"] <= 0.1,
            f"{ours['jobs_per_event']:.3f}",
        ),
    ]
    if "djstripe" in table:
        ratio = ours["sat_throughput"] / max(table["djstripe"]["sat_throughput"], 1e-9)
        checks.insert(2, ("ingest >= 5x dj-stripe's stock path", ratio >= 5, f"{ratio:.1f}x"))
    bounds = {100.0: 1000.0, 300.0: 2000.0}
    for rate, row in e2e.items():
        bound = bounds.get(rate)
        if bound is not None:
            checks.append(
                (
                    f"end-to-end p95 <= {bound / 1000:.0f} s at {rate:.0f} events/s",
                    row["lag_p95"] <= bound and not row["pending"],
                    f"{row['lag_p95']:.0f} ms",
                )
            )
        checks.append(
            (
                f"Stripe API calls per event <= 0.1 at {rate:.0f} events/s (known customers)",
                row["calls_per_event"] <= 0.1,
                f"{row['calls_per_event']:.2f}",
            )
        )
    print()
    for name, ok, figure in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {name}: {figure}")


if __name__ == "__main__":
    sys.exit(main())
