"""manage.py run_workers: the queue workers, supervised, outliving Redis outages.

    manage.py run_workers                    # one worker on webhooks, sync, default
    manage.py run_workers --processes 4      # four, restarted when one dies

Why not ``rqworker`` or ``rqworker-pool``: an RQ worker quits on a lost Redis connection
(its heartbeat raises ``ConnectionError``, "found an unhandled exception, quitting"; a
read timeout quits too), and one started while Redis is down exits 1. RQ's WorkerPool
(django-rq's ``rqworker-pool``) only starts a new worker every second, which then quits
again while Redis is down, and forks each job's worker from a process holding Django's
state. Here each worker process runs a loop that never gives up:

1. wait until Redis answers, with backoff (1 s doubling to ``--max-backoff``);
2. run a fresh RQ ``SimpleWorker`` (jobs run in the worker process: a fork of Django per
   job costs more than most of our jobs) with heartbeat TTL ``RQ_WORKER_TTL``, so idle
   workers heartbeat every TTL - 15 s and liveness (``/healthz?details=1``, dashboard,
   ``workers_down`` alert) tells a quiet worker from a dead one;
3. when the worker stops for any reason but a stop signal, log it and go back to 1.

A job running when Redis drops finishes its database work; RQ cannot record the result
then, and its abandoned entry is cleaned up by RQ when the worker's registration expires.
Every job is idempotent (rows claimed with ``SKIP LOCKED``, runs unique per handler), and
the scheduler's sweeper re-enqueues anything stored without a finished run, so nothing is
lost and nothing is done twice.

With ``--processes N`` this process is only a supervisor: it starts N worker processes
(this command with ``--processes 1``, each in its own session), restarts one that exits
with the same backoff, and on SIGTERM/SIGINT sends each one SIGTERM once (warm shutdown:
current jobs finish) and waits. Under systemd use ``KillMode=mixed`` so only the
supervisor gets the stop signal (a second signal is RQ's cold shutdown).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import django_rq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from redis.exceptions import RedisError
from rq.worker import SimpleWorker

from config.queueing import QUEUE_NAMES

logger = logging.getLogger("switchboard.workers")


class _Stop:
    requested = False


class SupervisedWorker(SimpleWorker):
    """A SimpleWorker that tells a stop signal from a failure: RQ raises the same
    ``StopRequested`` for an idle worker's signal as it breaks its loop on a lost
    connection, and both return from ``work()``."""

    def request_stop(self, signum: Any, frame: Any) -> None:
        _Stop.requested = True
        super().request_stop(signum, frame)

    def execute_job(self, job: Any, queue: Any) -> Any:
        close_old_connections()  # a long-lived process: drop broken database connections
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()


def _pause(seconds: float) -> None:
    """Wait up to ``seconds``, returning early when a stop is requested."""
    deadline = time.monotonic() + seconds
    while not _Stop.requested and time.monotonic() < deadline:
        time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if the supervisor dies (even by SIGKILL), so no
    worker is left behind working unsupervised. Elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _on_signal(signum: int, frame: Any) -> None:
    _Stop.requested = True


class Command(BaseCommand):
    help = "Run the queue workers under supervision until stopped (reconnects to Redis)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queues", nargs="*", help=f"queues in priority order {QUEUE_NAMES}")
        parser.add_argument("--processes", type=int, default=1, help="worker processes (1)")
        parser.add_argument("--max-backoff", type=float, default=30.0, help="seconds (30)")
        parser.add_argument(
            "--burst", action="store_true", help="work until the queues are empty, then exit"
        )

    def handle(self, *args: Any, queues: list[str], processes: int, **options: Any) -> None:
        names = queues or list(QUEUE_NAMES)
        unknown = set(names) - set(QUEUE_NAMES)
        if unknown:
            raise SystemExit(f"unknown queue(s): {', '.join(sorted(unknown))}")
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        if processes > 1:
            self._supervise(names, processes, options["max_backoff"])
        else:
            self._work(names, options["max_backoff"], options["burst"])

    # --- one worker process ---------------------------------------------------------------

    def _work(self, names: list[str], max_backoff: float, burst: bool) -> None:
        backoff = 1.0
        while not _Stop.requested:
            started = time.monotonic()
            try:
                worker = django_rq.get_worker(
                    *names, worker_class=SupervisedWorker, worker_ttl=settings.RQ_WORKER_TTL
                )
                worker.connection.ping()
                worker.work(burst=burst, with_scheduler=False)
            except RedisError as exc:
                logger.warning("workers: Redis unavailable (%s)", exc.__class__.__name__)
            if _Stop.requested or burst:
                break
            # Restore our handlers: RQ's point at the worker that just stopped.
            signal.signal(signal.SIGTERM, _on_signal)
            signal.signal(signal.SIGINT, _on_signal)
            if time.monotonic() - started > 60:
                backoff = 1.0  # it ran a while: this is a new outage
            logger.warning("workers: worker stopped; starting a new one in %.0f s", backoff)
            _pause(backoff)
            backoff = min(backoff * 2, max_backoff)
        self.stdout.write("workers: stopped")

    # --- supervisor -----------------------------------------------------------------------

    def _spawn(self, names: list[str], max_backoff: float) -> subprocess.Popen[bytes]:
        manage = Path(settings.BASE_DIR) / "manage.py"
        # Its own session: a Ctrl-C on the terminal reaches the supervisor only, which
        # passes one SIGTERM on. A second signal is RQ's cold shutdown (the job is cut).
        return subprocess.Popen(
            [sys.executable, str(manage), "run_workers", *names, "--processes", "1"]
            + ["--max-backoff", str(max_backoff)],
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def _supervise(self, names: list[str], processes: int, max_backoff: float) -> None:
        children = [self._spawn(names, max_backoff) for _ in range(processes)]
        restart_at: dict[int, float] = {}
        backoff = [1.0] * processes
        started = [time.monotonic()] * processes
        self.stdout.write(f"workers: supervising {processes} worker processes on {names}")
        while not _Stop.requested:
            for i, child in enumerate(children):
                if child.poll() is None:
                    continue
                now = time.monotonic()
                if i not in restart_at:
                    if now - started[i] > 60:
                        backoff[i] = 1.0
                    logger.warning(
                        "workers: process %s exited (%s); restarting in %.0f s",
                        child.pid,
                        child.returncode,
                        backoff[i],
                    )
                    restart_at[i] = now + backoff[i]
                    backoff[i] = min(backoff[i] * 2, max_backoff)
                elif now >= restart_at[i]:
                    del restart_at[i]
                    children[i] = self._spawn(names, max_backoff)
                    started[i] = now
            _pause(0.5)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait()
        self.stdout.write("workers: stopped")
