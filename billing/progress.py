"""A plain progress bar for management commands (stdout, no dependencies)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(
        self, total: int | None, label: str, stream: TextIO | None = None, width: int = 30
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self.closed = False

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last_draw > 0.1 or (self.total and self.done >= self.total):
            self._draw()
            self._last_draw = now

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.total:
            filled = int(self.width * min(self.done / self.total, 1))
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s"
        else:
            text = f"\r{self.label} {self.done} {elapsed:5.1f}s"
        self.stream.write(text)
        self.stream.flush()

    def finish(self) -> None:
        """Draw the final state and end the line (once; later calls do nothing)."""
        if self.closed:
            return
        self.closed = True
        self._draw()
        self.stream.write("\n")
        self.stream.flush()
