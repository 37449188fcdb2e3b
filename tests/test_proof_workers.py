"""``make proof``: workers under ``run_workers`` outlive a stopped Redis; every job done once.

A private redis-server (its own port and append-only file; the shared Redis is never
touched) and ``manage.py run_workers --processes 2`` as a real subprocess on the test
database. The supervisor is started while Redis is still down (a bare RQ worker exits 1
then), jobs are enqueued, and Redis is stopped mid-run for longer than the workers'
heartbeat TTL, then started again. Every job must have run exactly once; any job RQ lost
at the moment Redis went away is re-enqueued as run_scheduler's sweeper does for stored
events, and counted. Figures are printed (run with -s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from rq import Queue

from config.queueing import QUEUE_NAMES
from tests.fault_support import PrivateRedis

pytestmark = [pytest.mark.proof, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JOBS = int(os.environ.get("PROOF_JOBS", "600"))
WORKER_TTL = 20  # heartbeat TTL: idle workers beat every TTL - 15 s
OUTAGE_SECONDS = WORKER_TTL + 5


def _rows() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT n) FROM proof_job_runs")
        total, distinct = cursor.fetchone()
    return total, distinct


def _wait_for(predicate, seconds: float) -> bool:
    """Bounded polling."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def _wait_settled(client: redis.Redis, seconds: float) -> None:
    """Bounded polling until every job ran, or the queues are empty and no job has run for
    5 s (what is missing then was lost when Redis went away)."""
    deadline = time.monotonic() + seconds
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total, distinct = _rows()
        if distinct >= JOBS:
            return
        if total != last:
            last, quiet_since = total, time.monotonic()
        queued = sum(client.llen(f"rq:queue:{name}") for name in QUEUE_NAMES)
        if queued == 0 and time.monotonic() - quiet_since > 5:
            return
        time.sleep(0.2)


def test_workers_outlive_a_stopped_redis_and_do_every_job_once(tmp_path: Path):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE proof_job_runs (n int NOT NULL, pid int NOT NULL)")
    private = PrivateRedis(tmp_path)
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TEST_REDIS_URL": private.url,
        "RQ_WORKER_TTL": str(WORKER_TTL),
    }
    log = open(tmp_path / "workers.log", "wb")  # noqa: SIM115 - closed below
    workers = subprocess.Popen(
        [sys.executable, "manage.py", "run_workers", "--processes", "2", "--max-backoff", "2"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Started while Redis is down: the supervisor and its workers wait, they do not exit.
        time.sleep(3)  # the outage itself, not waiting for work
        assert workers.poll() is None
        private.start()
        client = redis.Redis.from_url(private.url)
        queues = [Queue(name, connection=client) for name in QUEUE_NAMES]
        for n in range(JOBS):
            queues[n % len(queues)].enqueue("devkit.proof_jobs.proof_record_job", n)

        assert _wait_for(lambda: _rows()[0] >= JOBS // 5, 60), "workers never started"
        before = _rows()[0]
        private.stop()
        outage_start = time.monotonic()
        time.sleep(OUTAGE_SECONDS)  # the outage itself, not waiting for work
        assert workers.poll() is None, "the supervisor exited while Redis was down"
        private.start()
        outage = time.monotonic() - outage_start

        client = redis.Redis.from_url(private.url)
        _wait_settled(client, 120)
        # Sweep: a job RQ had taken off the queue when Redis went away is re-enqueued,
        # as run_scheduler does for every stored event without a finished run.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT g FROM generate_series(0, %s) g "
                "WHERE NOT EXISTS (SELECT 1 FROM proof_job_runs WHERE n = g)",
                [JOBS - 1],
            )
            missing = [row[0] for row in cursor.fetchall()]
        queue = Queue("default", connection=client)
        for n in missing:
            queue.enqueue("devkit.proof_jobs.proof_record_job", n)
        assert _wait_for(lambda: _rows()[1] >= JOBS, 120)
        total, distinct = _rows()
        alive = _wait_for(lambda: len(client.smembers("rq:workers")) >= 2, 30)
        print(
            f"\nworker fault proof: {JOBS} jobs, 1 Redis stop of {outage:.0f} s "
            f"(worker TTL {WORKER_TTL} s) after {before} jobs, plus a start with Redis down; "
            f"done {distinct}, lost by RQ and re-enqueued by the sweep {len(missing)}, "
            f"lost {JOBS - distinct}, duplicated {total - distinct}; "
            f"workers registered again: {alive}; supervisor running: {workers.poll() is None}"
        )
        assert distinct == JOBS and total == JOBS
        assert workers.poll() is None and alive
    finally:
        workers.send_signal(signal.SIGTERM)
        try:
            workers.wait(timeout=30)
        except subprocess.TimeoutExpired:
            workers.kill()
        log.close()
        private.stop()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS proof_job_runs")
