"""A training process's life as the run store sees it: running with a heartbeat, then how it ended.

Everything here is about the process, not the learning: the log file, SIGTERM as a cancel request,
the heartbeat thread, and the final status (completed, cancelled, failed with a readable error).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path

from fer_core.config import TrainConfig
from fer_core.errors import UserError
from fer_core.model.kerasenv import library_versions
from fer_core.runs import store


class RunLifecycle:
    def __init__(self, run_dir: Path, cfg: TrainConfig, resume: bool):
        self.run_dir, self.cfg, self.resume = run_dir, cfg, resume
        self.cancel_flag = threading.Event()
        self._stop_beats = threading.Event()
        self._old_handler = None
        self._log_file = None
        self._info: dict = {}
        self._started = 0.0

    def log(self, msg: str) -> None:
        print(msg, flush=True)
        self._log_file.write(msg + "\n")
        self._log_file.flush()

    def __enter__(self) -> "RunLifecycle":
        self._log_file = open(store.log_path(self.run_dir), "a", encoding="utf-8")
        if self.resume:   # the process that wrote this run was killed: drop what it left half-written
            for name in store.remove_stale_temp_files(self.run_dir):
                self.log(f"removed {name}, a half-written file the interrupted process left")
        if threading.current_thread() is threading.main_thread():
            self._old_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        self._info = store.read_json(store.run_json_path(self.run_dir), {}) or {}
        self._started = time.time()
        store.update_run(self.run_dir, name=self._info.get("name") or self.cfg.name or self.run_dir.name,
                         config=self.cfg.to_dict(), status="running",
                         created=self._info.get("created") or store.now_iso(), started=store.now_iso(),
                         heartbeat=store.now_iso(), heartbeat_unix=time.time(), pid=os.getpid(),
                         host=socket.gethostname(),
                         versions=library_versions(), error=None)
        self._beats = threading.Thread(target=self._beat, daemon=True)
        self._beats.start()
        return self

    def _on_sigterm(self, signum, frame) -> None:
        self.log("SIGTERM received: stopping after the current batch, keeping the checkpoint")
        self.cancel_flag.set()

    def _beat(self) -> None:
        while not self._stop_beats.wait(store.HEARTBEAT_SECONDS):
            try:
                store.update_run(self.run_dir, heartbeat=store.now_iso(), heartbeat_unix=time.time())
            except OSError:
                pass

    def __exit__(self, exc_type, exc, tb) -> bool:
        # the heartbeat stops first: a late beat must not land after the final status
        self._stop_beats.set()
        self._beats.join(timeout=30)
        try:
            if exc is None:
                self._record_end()
            else:
                self._record_failure(exc)
        finally:
            self._log_file.close()
            if self._old_handler is not None:
                signal.signal(signal.SIGTERM, self._old_handler)
            store.progress_path(self.run_dir).unlink(missing_ok=True)
        return False    # failures are re-raised after being recorded

    def _record_end(self) -> None:
        status = "cancelled" if self.cancel_flag.is_set() else "completed"
        before = (self._info.get("train_seconds") or 0) if self.resume else 0   # what the stopped process used
        seconds = time.time() - self._started + before
        store.update_run(self.run_dir, status=status, ended=store.now_iso(), train_seconds=round(seconds, 1))
        self.log(f"run {status}: {self.run_dir}")

    def _record_failure(self, e: BaseException) -> None:
        msg = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        status = "failed"
        if isinstance(e, KeyboardInterrupt):
            status, msg = "cancelled", "interrupted (Ctrl-C)"
        elif isinstance(e, OSError) and getattr(e, "errno", None) == 28:
            msg = f"the disk is full while writing the run ({e}); the previous checkpoint is kept"
        self._log_file.write("".join(traceback.format_exception(e)))
        store.update_run(self.run_dir, status=status, error=msg, ended=store.now_iso())
