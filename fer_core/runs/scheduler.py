"""The app's queue keeper: starts queued runs when a slot is free, with no page open.

A training launched by the queue starts the next one as it ends; a training killed outright (SIGKILL,
power cut) hands nothing on. This thread, one per app process, checks every few seconds. The queue
itself lives in the run store, so a restarted app picks it up where it was.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fer_core.runs import queue


class QueueScheduler:
    def __init__(self, runs_dir: Path, interval: float = 5.0, log=print):
        self.runs_dir, self.interval, self.log = Path(runs_dir), interval, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="queue-scheduler", daemon=True)

    def start(self) -> "QueueScheduler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.runs_dir.is_dir():
                    for run_dir in queue.start_queued(self.runs_dir):
                        self.log(f"queue: started {run_dir}")
            except Exception as e:   # a damaged run folder must not stop the scheduler for good
                self.log(f"queue: could not check the queue ({type(e).__name__}: {e})")
