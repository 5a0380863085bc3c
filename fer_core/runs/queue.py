"""The training queue: runs waiting, running and finished, kept entirely in the run store.

There is no server process or in-memory queue to lose. A job *is* a run folder:
  enqueue        creates the folder with run.json status 'queued' and the full config
  start_queued   launches queued runs, oldest first, while fewer than `max_concurrent` run;
                 each one is `python -m fer_core run DIR` (which reads run.json) in its own session,
                 so it outlives the Streamlit script, a page reload or a closed browser
  queue_resume   puts a failed or cancelled run with a checkpoint back in the queue (a RESUME request
                 file beside it): `run DIR --resume` then continues from last.keras
  cancel         a queued run is marked cancelled; a running one gets a CANCEL file and SIGTERM,
                 and training stops cleanly (status 'cancelled', checkpoints kept)
Any page (or several browser sessions at once) can call `start_queued`; a file lock makes
sure two callers never launch the same run twice. A training launched from the queue also calls
it as it ends (`start_next_queued`), and a queue keeper process (runs/keeper.py) calls it while runs
wait, so the queue moves on with no page open, or no app at all.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from fer_core.config import TrainConfig
from fer_core.runs import store
from fer_core.runs.defaults import REPO_ROOT

DEFAULT_MAX_CONCURRENT = 1
_SETTINGS = ".queue.json"      # hidden: list_runs only lists folders, and skips dot-names anyway
_LOCK = ".queue.lock"
_CHAIN_ENV = "FER_QUEUE_RUNS_DIR"   # set for queue-launched trainings: the run store whose queue they move on


class JobError(store.RunStoreError):
    """A queue action that cannot be done (e.g. cancelling a finished run)."""


# ---------------------------------------------------------------- settings
def max_concurrent(runs_dir) -> int:
    """The cap on simultaneous trainings, stored in the run store so every session shares it."""
    value = (store.read_json(Path(runs_dir) / _SETTINGS, {}) or {}).get("max_concurrent")
    return value if isinstance(value, int) and value >= 1 else DEFAULT_MAX_CONCURRENT


def set_max_concurrent(runs_dir, value: int) -> None:
    if int(value) < 1:
        raise JobError("at least one run must be allowed to run at a time")
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(Path(runs_dir) / _SETTINGS, {"max_concurrent": int(value)})


def _queue_lock(runs_dir):
    """An exclusive lock over the whole queue (an flock on a file in the run store)."""
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    return store.exclusive_lock(Path(runs_dir) / _LOCK)


# ---------------------------------------------------------------- enqueue
def enqueue(runs_dir, cfg: TrainConfig) -> Path:
    """Create a queued run folder for a config its caller has checked (fer_core.train.submit.queue_training).
    Raises UserError with a readable message when the dataset is missing."""
    cfg = dataclasses.replace(cfg, runs_dir=str(runs_dir))
    if not cfg.data:
        raise JobError("choose a dataset first")
    cfg.data = str(Path(cfg.data).expanduser().resolve())
    if cfg.weights.startswith("run:"):
        cfg.weights = "run:" + str(Path(cfg.weights[4:]).resolve())
    if not Path(cfg.data).exists():
        raise JobError(f"dataset path not found: {cfg.data}")
    name = cfg.name or f"{cfg.backbone}-{Path(cfg.data).name}"
    run_dir = store.create_run_dir(runs_dir, name)
    store.write_json_atomic(store.run_json_path(run_dir), {
        "name": name, "status": "queued", "config": cfg.to_dict(),
        "created": store.now_iso(), "queued_unix": time.time(),
    })
    return run_dir


# ---------------------------------------------------------------- state of the queue
def _reconcile(run_dir: Path, info: dict) -> dict:
    """A 'running' run whose process has exited without saying so is recorded as failed (or cancelled)."""
    info = store.with_launch(run_dir, info)
    if info.get("status") != "running" or not info.get("pid") or store.process_alive(info.get("pid")):
        return info
    info = store.with_launch(run_dir, store.read_json(store.run_json_path(run_dir), {}) or {})   # re-read: it
    if info.get("status") != "running" or store.process_alive(info.get("pid")):                   # may have ended
        return info
    if store.cancel_requested(run_dir):
        return store.update_run(run_dir, status="cancelled", ended=store.now_iso())
    return store.update_run(run_dir, status="failed", ended=store.now_iso(), error=exit_reason(run_dir))


_ERROR_WORDS = re.compile(r"Error|Exception|Traceback|Killed|Segmentation fault|No space left|Aborted")


def exit_reason(run_dir) -> str:
    """Why a training process vanished, from the end of its log when the log says so: an error line only (a
    normal progress line is not a cause); a process killed from outside (kill -9, out of memory) writes none."""
    errors = [line.strip() for line in log_tail(run_dir, 30).splitlines() if _ERROR_WORDS.search(line)]
    if errors:
        return "the training process exited unexpectedly: " + errors[-1]
    return ("the training process exited unexpectedly and its log names no error: it was probably killed from "
            "outside (kill -9, the machine out of memory, a restart). Resume continues from the last checkpoint.")


def _scan(runs_dir) -> tuple[list[Path], list[Path]]:
    """-> (queued oldest first, running) after reconciling dead processes."""
    queued, running = [], []
    root = Path(runs_dir)
    if not root.is_dir():
        return [], []
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        info = store.read_json(store.run_json_path(d), None)
        if not isinstance(info, dict):
            continue
        info = _reconcile(d, info)
        status = store.effective_status(info)
        asked = store.resume_requested(d) if status in ("failed", "cancelled") else None
        if status == "queued" or asked is not None:
            queued.append((asked or info.get("queued_unix") or 0, d.name, d))
        elif status == "running":
            running.append(d)
    return [d for *_, d in sorted(queued)], running


def active_jobs(runs_dir) -> dict:
    """{'queued': [run dirs, next first], 'running': [run dirs]}."""
    queued, running = _scan(runs_dir)
    return {"queued": queued, "running": running}


# ---------------------------------------------------------------- launching
def launch(run_dir) -> int:
    """Start the training process for one queued run; returns its pid.

    The child gets its own session (a page reload or server restart does not kill it).
    Its stderr (loading progress, warnings, a crash's last words) is appended to train.log;
    stdout is dropped because the training loop already writes every log line to train.log itself.
    """
    run_dir = Path(run_dir)
    info = store.read_json(store.run_json_path(run_dir), {}) or {}
    # `run` reads the config from run.json; whether to resume is decided here (the request is used up below;
    # stores of older versions flagged it in run.json)
    resume = store.resume_requested(run_dir) is not None or bool(info.get("resume_requested"))
    args = [sys.executable, "-m", "fer_core", "run", str(run_dir), *(["--resume"] if resume else [])]
    # Counted as running from now on, written before the child exists (so run.json has one writer at a time):
    # the child takes a few seconds to import TensorFlow before it writes its own pid and heartbeat, and must not
    # be launched a second time meanwhile. Until then its fresh heartbeat says it lives.
    store.clear_launch(run_dir)                 # an earlier launch's pid must not stand for this one
    store.update_run(run_dir, status="running", pid=None, host=socket.gethostname(), launched=store.now_iso(),
                     heartbeat=store.now_iso(), heartbeat_unix=time.time(), error=None, resume_requested=None)
    store.clear_resume(run_dir)
    # `python -m` in the repository root finds fer_core there (the folder it runs in is on its path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", _CHAIN_ENV: str(run_dir.parent)}
    with open(store.log_path(run_dir), "ab") as log:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    # Reaped as soon as it exits: otherwise a finished training stays <defunct> until something happens to wait
    # for it (the next launch, or a page that checks that very run while it still says 'running').
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    store.write_launch(run_dir, proc.pid)        # launch.json, not run.json: the child writes that one now
    return proc.pid


def can_resume(run: dict) -> bool:
    """A run that ended early (failed or cancelled) and kept its last checkpoint."""
    return run.get("status") in ("failed", "cancelled") and store.last_model_path(run["path"]).is_file()


def queue_resume(run_dir) -> None:
    """Back into the queue, to continue from its last checkpoint (the queue's cap still applies)."""
    run_dir = Path(run_dir)
    with _queue_lock(run_dir.parent):     # not between another caller's check and its launch
        if not can_resume({**store.read_run(run_dir), "path": str(run_dir)}):
            raise store.RunStoreError(f"{run_dir.name} cannot be resumed: only a failed or cancelled run "
                                      "with a checkpoint (last.keras) can.")
        store.clear_cancel(run_dir)
        store.request_resume(run_dir)     # a request beside run.json, which stays as the training left it


def start_queued(runs_dir, max_running: int | None = None) -> list[Path]:
    """Launch queued runs, oldest first, while fewer than `max_running` are running. Returns those launched."""
    cap = max_running if max_running is not None else max_concurrent(runs_dir)
    started = []
    with _queue_lock(runs_dir):
        queued, running = _scan(runs_dir)
        for run_dir in queued[:max(0, cap - len(running))]:
            launch(run_dir)
            started.append(run_dir)
    return started


def start_next_queued() -> list[Path]:
    """Called by a queue-launched training as it ends (completed, failed or cancelled): launch what waits.

    A training started by hand from the CLI has no such setting and leaves the queue alone."""
    runs_dir = os.environ.get(_CHAIN_ENV)
    return start_queued(runs_dir) if runs_dir else []


def cancel(run_dir) -> str:
    """Stop a run: a queued one never starts; a running one stops after its current batch. Returns the new state."""
    run_dir = Path(run_dir)
    with _queue_lock(run_dir.parent):
        info = store.read_json(store.run_json_path(run_dir), None)
        if not isinstance(info, dict):
            raise JobError(f"{run_dir.name} has no readable run.json")
        info = store.with_launch(run_dir, info)
        status = info.get("status")
        if store.resume_requested(run_dir) is not None and status != "running":
            store.clear_resume(run_dir)       # a resume not started yet: the run stays as it ended
            return "cancelled"
        if status == "queued":
            store.update_run(run_dir, status="cancelled", ended=store.now_iso(), error=None)
            return "cancelled"
        if status != "running":
            raise JobError(f"{info.get('name', run_dir.name)} is {status}, not running or queued")
        store.request_cancel(run_dir)
        pid = info.get("pid")
        if store.process_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
            return "cancelling"
        store.update_run(run_dir, status="cancelled", ended=store.now_iso())
        return "cancelled"


def wait(run_dir, timeout: float = 600, poll: float = 1.0) -> str:
    """Block until the run is no longer queued or running (for scripts and tests); returns its status."""
    deadline = time.time() + timeout
    while True:
        info = _reconcile(Path(run_dir), store.read_json(store.run_json_path(run_dir), {}) or {})
        status = store.effective_status(info)
        if status not in ("queued", "running") or time.time() > deadline:
            return status
        time.sleep(poll)


# ---------------------------------------------------------------- progress for the pages
def progress(run_dir) -> dict:
    """What the Train page shows for a job: status, epoch of epochs, ETA, latest metrics, history."""
    run_dir = Path(run_dir)
    info = store.read_json(store.run_json_path(run_dir), {}) or {}
    cfg = info.get("config", {})
    p = store.read_json(store.progress_path(run_dir), {}) or {}
    history = store.read_history(run_dir)
    total = p.get("epochs") or (cfg.get("epochs", 0) + (cfg.get("fine_tune_epochs", 0)
                                                        if cfg.get("fine_tune_layers") else 0))
    return {
        "status": store.shown_status(run_dir, info),
        "name": store.given_name(run_dir) or info.get("name") or run_dir.name,
        "epoch": p.get("epoch") or (len(history) + 1 if info.get("status") == "running" else len(history)),
        "epochs": total,
        "epochs_done": len(history),
        "batch": p.get("batch"), "batches": p.get("batches"),
        "phase": p.get("phase"),
        "eta_seconds": p.get("eta_seconds"),
        "latest": history[-1] if history else None,
        "history": history,
        "cancel_requested": store.cancel_requested(run_dir),
        "error": info.get("error"),
    }


def log_tail(run_dir, lines: int = 200) -> str:
    """The end of train.log (the whole log can be large), without TensorFlow's start-up chatter (older logs
    have it; runs launched now filter it out as they write)."""
    from fer_core.runs.quiet import is_noise
    try:
        with open(store.log_path(run_dir), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200_000))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join([line for line in text.splitlines() if not is_noise(line)][-lines:])
