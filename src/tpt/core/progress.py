"""A dependency-free progress line for long stages: done/total, rate, tokens/s, ETA and failures.

On a terminal it redraws one line; elsewhere (CI logs, files) it prints a line every `interval_s`.
"""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or inf
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, total: int | None, *, label: str, enabled: bool = True, interval_s: float = 10.0):
        self.total = total
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.interval_s = 0.2 if self.tty else interval_s
        self.start = time.monotonic()
        self.last = 0.0
        self.done = 0
        self.done_at_start = 0
        self.failures = 0
        self.tokens = 0

    def skip(self, n: int) -> None:
        """Items finished by an earlier run: counted as done, not in the rate."""
        self.done += n
        self.done_at_start += n

    def update(self, *, done: int = 0, failures: int = 0, tokens: int = 0) -> None:
        self.done += done
        self.failures += failures
        self.tokens += tokens
        now = time.monotonic()
        if self.enabled and now - self.last >= self.interval_s:
            self.last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        new = self.done - self.done_at_start
        rate = new / elapsed
        total = f"/{self.total}" if self.total is not None else ""
        pct = f" {100 * self.done / self.total:5.1f}%" if self.total else ""
        eta = (self.total - self.done) / rate if self.total is not None and rate > 0 else float("inf")
        return (
            f"{self.label}: {self.done}{total}{pct} | {rate * 3600:,.0f}/h | {self.tokens / elapsed:,.1f} tok/s"
            f" | failures {self.failures} | elapsed {format_duration(elapsed)} | ETA {format_duration(eta)}"
        )

    def _draw(self, now: float) -> None:
        text = self.line(now)
        if self.tty:
            sys.stderr.write("\r" + text[:200].ljust(120))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            if self.tty:
                sys.stderr.write("\n")
                sys.stderr.flush()
