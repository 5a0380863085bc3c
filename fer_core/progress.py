"""Plain-text progress with an ETA for long steps (loading images, caching features, epochs)."""

from __future__ import annotations

import sys
import time


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def remaining_seconds(done: float, total: float, since: float, done_since: float = 0.0,
                      min_items: float = 2, min_seconds: float = 0.5, now: float | None = None) -> float:
    """Seconds left at the pace since `since` (when `done_since` items were done); NaN until the pace rests on
    at least `min_items` items and `min_seconds`. The first item carries the start-up (opening the folder,
    tracing a model), so a pace read from it alone promises hours for a job of minutes."""
    now = time.time() if now is None else now
    items, seconds = done - done_since, now - since
    if items < min_items or seconds < min_seconds:
        return float("nan")
    return seconds / items * max(0.0, total - done)


class Progress:
    """Prints `label: done/total (pct) ETA ...` at most every `every` seconds, and once at the end.

    The pace is measured from the first update on, so the start-up before the first item is not
    spread over the rest; until it rests on enough items the ETA reads 'estimating'."""

    def __init__(self, label: str, total: int, every: float = 2.0, stream=None, callback=None):
        self.label, self.total, self.every = label, max(int(total), 1), every
        self.stream = stream or sys.stderr
        self.callback = callback
        self.start = time.time()
        self._last = 0.0
        self._first: tuple[float, int] | None = None      # (time, items done) at the first update
        self.done = 0

    def eta(self) -> float:
        if self.done >= self.total:
            return 0.0
        if self._first is None:
            return float("nan")
        since, done_since = self._first
        return remaining_seconds(self.done, self.total, since, done_since,
                                 min_items=max(2, self.total // 50), min_seconds=1.0)

    def update(self, n: int = 1) -> None:
        self.done += n
        t = time.time()
        if self._first is None:
            self._first = (t, self.done)
        if self.done >= self.total or t - self._last >= self.every:
            self._last = t
            pct = 100.0 * self.done / self.total
            eta = self.eta()
            eta_s = format_seconds(eta) if eta == eta else "estimating"
            print(f"{self.label}: {self.done}/{self.total} ({pct:.0f}%) ETA {eta_s}", file=self.stream, flush=True)
            if self.callback:
                self.callback(self.done, self.total, eta)
