"""Settings of the benchmark's web app and workers: ``config.settings`` plus a bench URLconf.

The database and Redis are the bench's own, whatever the environment says for the
project (``BENCH_DATABASE_URL``, default ``switchboard_bench``; ``BENCH_REDIS_URL``,
default Redis database 13), so a bench run never touches development data or a running
demo worker's queues. Nothing else differs from what ships: same middleware, same
``CONN_MAX_AGE``/``CONN_HEALTH_CHECKS`` (``DB_CONN_MAX_AGE``, default 60) and ``OPTIONS``,
same RQ commit mode. ``DEBUG`` is off (a debug server keeps every SQL query in memory).
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "false")

from config.settings import *  # noqa: E402,F401,F403
from config.settings import DATABASES, RQ_QUEUES, env  # noqa: E402

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/switchboard_bench"
)
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

_db = env.db_url_config(BENCH_DATABASE_URL)
_db["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
_db["CONN_HEALTH_CHECKS"] = DATABASES["default"]["CONN_HEALTH_CHECKS"]
_db["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), **_db.get("OPTIONS", {})}
DATABASES = {"default": _db}

REDIS_URL = BENCH_REDIS_URL
for _queue in RQ_QUEUES.values():
    _queue["URL"] = REDIS_URL

DEBUG = False
ROOT_URLCONF = "scripts.bench.urls"
