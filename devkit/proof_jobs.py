"""A job for ``make proof``'s worker fault test: it records each execution of job ``n``
in ``proof_job_runs`` (a table the test creates), so the test can count every job done,
lost or done twice after Redis was stopped under the workers."""

from __future__ import annotations

import os
import time

from django.db import connection


def proof_record_job(n: int, work_seconds: float = 0.02) -> None:
    time.sleep(work_seconds)  # the job's own work: long enough for an outage to land mid-job
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO proof_job_runs (n, pid) VALUES (%s, %s)", [n, os.getpid()])
