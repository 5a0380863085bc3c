"""The queue keeper: a process of its own that starts queued runs as slots free up, with no app and no page open.

Why a process: the app's thread that did this lived and died with the app, and Streamlit runs the app's code only
when a browser opens a page, so after an app restart queued runs waited for a visitor (60 and 129 s were seen).
A keeper is launched, in a session of its own, whenever runs wait in the queue (as a run is queued or resumed,
and when a session opens the app); it holds the run store's keeper lock while it lives, so a store has at most
one, and it exits once nothing waits. Restarting the app does not touch it. A training launched from the queue
also starts the next queued run as it ends (queue.start_next_queued), so a queue behind a running training moves
on at once.

    python -m fer_core.runs.keeper RUNS_DIR [--interval SECONDS]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from fer_core.runs import queue, store
from fer_core.runs.defaults import REPO_ROOT

KEEPER_LOCK = ".queue-keeper.lock"   # held (flock) by the living keeper; the kernel lets go when it dies
KEEPER_LOG = ".queue-keeper.log"
INTERVAL_SECONDS = 5.0


def _try_lock(runs_dir: Path, wait: float = 0.0):
    """The store's keeper lock, held by the returned file (which then names this process), or None when a living
    keeper holds it (after trying for `wait` seconds)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    f = open(runs_dir / KEEPER_LOCK, "a+")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                f.close()
                return None
            time.sleep(0.05)
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def keeper_alive(runs_dir) -> bool:
    """Whether a keeper keeps the store: the process the lock file names is alive. Read, never locked, so asking
    cannot make a keeper that is starting at that moment believe another one has the store."""
    try:
        pid = int((Path(runs_dir) / KEEPER_LOCK).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return store.process_alive(pid)


def keep(runs_dir, interval: float = INTERVAL_SECONDS, log=print) -> int:
    """Starts queued runs as slots free up, until none waits; returns at once when another keeper has the store."""
    runs_dir = Path(runs_dir)
    lock = _try_lock(runs_dir, wait=1.0)
    while lock is not None:
        with lock:
            _keep_while_queued(runs_dir, interval, log)
            lock.truncate(0)            # no longer alive for keeper_alive, before the lock is let go
        # a run queued between the last look and letting go found the lock taken and launched no keeper: look
        # once more, now that a new one could start
        lock = _try_lock(runs_dir) if queue.active_jobs(runs_dir)["queued"] else None
    return 0


def _keep_while_queued(runs_dir: Path, interval: float, log) -> None:
    while True:
        try:
            for run_dir in queue.start_queued(runs_dir):
                log(f"queue keeper: started {run_dir.name}")
            if not queue.active_jobs(runs_dir)["queued"]:
                return
        except Exception as e:   # a damaged run folder must not stop the keeper for good
            log(f"queue keeper: could not check the queue ({type(e).__name__}: {e})")
        time.sleep(interval)


def ensure_keeper(runs_dir) -> bool:
    """Launches a keeper for the store when runs wait in its queue and none keeps it; True when one was launched.
    Two callers at once may launch two: the second finds the lock taken and exits. FER_QUEUE_KEEPER=off launches
    none (the test suite, whose temporary stores must not start trainings behind its back)."""
    runs_dir = Path(runs_dir)
    if os.environ.get("FER_QUEUE_KEEPER", "on") == "off":
        return False
    if not runs_dir.is_dir() or keeper_alive(runs_dir) or not queue.active_jobs(runs_dir)["queued"]:
        return False
    with open(runs_dir / KEEPER_LOG, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fer_core.runs.keeper", str(runs_dir.resolve())],
                                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    threading.Thread(target=proc.wait, name=f"reap-keeper-{proc.pid}", daemon=True).start()   # no <defunct>
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="start a run store's queued runs as slots free up, then exit")
    p.add_argument("runs_dir")
    p.add_argument("--interval", type=float, default=INTERVAL_SECONDS, help="seconds between looks at the queue")
    a = p.parse_args(argv)
    return keep(a.runs_dir, a.interval, log=lambda msg: print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
