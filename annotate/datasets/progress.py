"""A dependency-free progress bar for management commands (written to stderr)."""

import sys
import time
from typing import TextIO


class ProgressBar:
    """`bar = ProgressBar("import", total)`; `bar(done)` updates; `bar.close()` ends the line.

    Commands pass `self.stderr._out`, the raw stream behind Django's OutputWrapper, because
    the wrapper appends a newline to every write and the bar redraws one line with `\\r`.
    Redraws at most ~10 times a second so that it never slows the loop it reports on; when
    stderr is not a terminal it prints a plain line every 10% instead of carriage returns.
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 0)
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self.done = 0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or done >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        else:
            decile = int(10 * done / self.total) if self.total else 10
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self._line(now) + "\n")
                self.stream.flush()

    def _line(self, now: float) -> str:
        width = 30
        frac = self.done / self.total if self.total else 1.0
        filled = int(width * min(frac, 1.0))
        rate = self.done / max(now - self.started, 1e-9)
        return (
            f"{self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done}/{self.total} ({rate:,.0f}/s)"
        )

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
