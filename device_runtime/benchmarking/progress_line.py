"""A one-line progress bar on stderr for long benchmark phases, without third-party packages."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 24
MIN_INTERVAL_S = 0.2


class ProgressLine:
    """Redraws ``label phase [#####-----] done/total`` on one stderr line, at most every 0.2 s.

    When the stream is not a terminal (a log file, CI), it writes one plain line per finished
    phase instead of redrawing. A disabled instance (``enabled=False``, e.g. for ``--quiet``) does nothing. :meth:`close`
    ends the line. Not thread-safe: update it from one thread.
    """

    def __init__(self, label: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self._last_draw = 0.0
        self._drawn = False
        isatty = getattr(self.stream, "isatty", None)
        self._interactive = bool(isatty and isatty())

    def update(self, phase: str, done: int, total: int) -> None:
        """Show that ``done`` of ``total`` steps of ``phase`` are finished."""
        if not self.enabled:
            return
        if not self._interactive:
            if done >= total:
                self.stream.write(f"{self.label} {phase}: {done}/{total} done\n")
                self.stream.flush()
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < MIN_INTERVAL_S:
            return
        self._last_draw = now
        filled = BAR_WIDTH * done // max(total, 1)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stream.write(f"\r{self.label} {phase:<12} [{bar}] {done}/{total}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Finish the line (newline) if anything was drawn."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
