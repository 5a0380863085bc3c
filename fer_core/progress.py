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


class Progress:
    """Prints `label: done/total (pct) ETA ...` at most every `every` seconds, and once at the end."""

    def __init__(self, label: str, total: int, every: float = 2.0, stream=None, callback=None):
        self.label, self.total, self.every = label, max(int(total), 1), every
        self.stream = stream or sys.stderr
        self.callback = callback
        self.start = time.time()
        self._last = 0.0
        self.done = 0

    def eta(self) -> float:
        elapsed = time.time() - self.start
        if self.done <= 0:
            return float("nan")
        return elapsed / self.done * (self.total - self.done)

    def update(self, n: int = 1) -> None:
        self.done += n
        t = time.time()
        if self.done >= self.total or t - self._last >= self.every:
            self._last = t
            pct = 100.0 * self.done / self.total
            eta = self.eta()
            eta_s = format_seconds(eta) if eta == eta else "?"
            print(f"{self.label}: {self.done}/{self.total} ({pct:.0f}%) ETA {eta_s}", file=self.stream, flush=True)
            if self.callback:
                self.callback(self.done, self.total, eta)
