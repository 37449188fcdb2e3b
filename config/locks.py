"""PostgreSQL advisory locks named by a string, one way for every app.

A key's text says what it serialises (``"refund:ch_1"``, ``"outbox:crm:42"``); its lock
id is the 64-bit ``hashtextextended`` of that text, so two different keys practically
never share a lock (the 32-bit ``hashtext`` collides far sooner).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# The SQL of a key's lock id, for code that must take the same lock on another
# connection (tests that hold one while the code under test waits).
LOCK_ID = "hashtextextended(%s, 0)"


def advisory_xact_lock(key: str) -> None:
    """Wait for the lock on ``key``; it is released when the current transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_xact_lock({LOCK_ID})", [key])


@contextmanager
def try_advisory_lock(key: str) -> Iterator[bool]:
    """Take the session-level lock on ``key`` if nobody holds it; yields whether it was
    taken, and releases it on leaving. Session-level, so it may span several
    transactions; PostgreSQL releases it anyway when the connection ends."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({LOCK_ID})", [key])
        taken = bool(cursor.fetchone()[0])
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({LOCK_ID})", [key])
