"""A job for the queue tests: it leaves a mark in Redis that the test can look for."""

from __future__ import annotations

import django_rq


def leave_mark_job(mark: str) -> None:
    django_rq.get_connection("default").rpush("test:marks", mark)


def marks() -> list[str]:
    return [m.decode() for m in django_rq.get_connection("default").lrange("test:marks", 0, -1)]
