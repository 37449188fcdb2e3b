"""How long to wait before trying again: one rule for everything that retries."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff(attempts: int, *, base: float, cap: float) -> timedelta:
    """Exponential backoff with jitter after ``attempts`` failures: uniform(c/2, c) with
    c = min(cap, base * 2**(n-1)). The jitter spreads retries that failed together; half
    the ceiling is kept so a retry never comes almost at once."""
    ceiling = min(cap, base * (2 ** max(attempts - 1, 0)))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))
