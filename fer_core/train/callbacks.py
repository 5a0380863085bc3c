"""The training loop's callbacks, one job each, sharing one `RunState`.

Keras calls them in list order at each epoch end: `Checkpointer` decides whether the epoch is the best
and saves, then `HistoryRecorder` writes the row, the log line and the progress file.
`TrainClock` owns the wall-clock budget (the schedule reads it too); `CancelWatch` stops on request.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_core.model.kerasenv import keras
from fer_core.model.saving import save_model_atomic
from fer_core.progress import format_seconds, remaining_seconds
from fer_core.runs import store

@dataclass
class RunState:
    """What a run has done so far; stored as state.json so a killed run resumes where it stopped."""
    epochs_done: int = 0
    phase: str | None = None
    phase_epoch: int = 0
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    kept_epoch: int | None = None
    lr: float | None = None
    epoch_seconds: list = field(default_factory=list)
    history: list = field(default_factory=list)       # history.csv's rows, by column name (not in state.json)
    budget_spent: bool = False
    total_epochs: int = 0
    last_improved: bool = False

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("history", "last_improved")}

    @classmethod
    def load(cls, run_dir: Path) -> "RunState":
        saved = store.read_json(store.state_path(run_dir), None) or {}
        known = {k: v for k, v in saved.items() if k in cls.__dataclass_fields__}
        state = cls(**known)
        state.history = store.read_history(run_dir)[:state.epochs_done]
        return state

    def seconds_spent(self, phase: str | None = None) -> float:
        """Seconds the recorded epochs took (of one phase, or all): a resumed run's training time so far."""
        return float(sum(r["seconds"] or 0.0 for r in self.history if phase is None or r["phase"] == phase))


class TrainClock(keras.callbacks.Callback):
    """The wall-clock budget: starts after the first batch (which traces the graph) and stops the fit at the end.

    A resumed run starts its clock at the seconds its earlier epochs took, so the time it lay stopped does
    not count. The budget is checked mid-epoch too: one epoch of a big backbone must not overrun it.
    """

    def __init__(self, budget_seconds: float, seconds_before: float, state: RunState, log):
        super().__init__()
        self.budget, self.seconds_before, self.state, self.log = budget_seconds, seconds_before, state, log
        self.started: float | None = None

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.time() - self.started

    def fraction_used(self) -> float:
        return self.elapsed() / self.budget if self.budget else 0.0

    def remaining(self) -> float | None:
        return max(self.budget - self.elapsed(), 0.0) if self.budget and self.started is not None else None

    def spent(self) -> bool:
        return bool(self.budget) and self.started is not None and self.elapsed() >= self.budget

    def on_train_batch_end(self, batch, logs=None):
        if self.started is None:
            self.started = time.time() - self.seconds_before
        if self.spent():
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.spent():
            self.log(f"training budget of {self.budget:g}s used: stopping")
            self.state.budget_spent = True
            self.model.stop_training = True


class CancelWatch(keras.callbacks.Callback):
    """Stops after the current batch when the run folder gets a CANCEL file or the process a SIGTERM."""

    def __init__(self, run_dir: Path, cancel_flag: threading.Event):
        super().__init__()
        self.run_dir, self.cancel_flag = run_dir, cancel_flag
        self._last_check = 0.0

    def on_train_batch_end(self, batch, logs=None):
        t = time.time()
        if t - self._last_check > 0.5:
            self._last_check = t
            if store.cancel_requested(self.run_dir):
                self.cancel_flag.set()
        if self.cancel_flag.is_set():
            self.model.stop_training = True


class Checkpointer(keras.callbacks.Callback):
    """model.keras at the best validation epoch (without optimizer); last.keras + state.json every epoch.

    `full_model` is what gets saved: when the head trains on cached features, the fitted model is the
    head alone, but the run stores the whole net.
    """

    def __init__(self, run_dir: Path, full_model, phase: str, state: RunState, cancel_flag: threading.Event):
        super().__init__()
        self.run_dir, self.full_model, self.phase, self.state = run_dir, full_model, phase, state
        self.cancel_flag = cancel_flag

    def on_epoch_end(self, epoch, logs=None):
        if self.cancel_flag.is_set():
            return   # an epoch cut short by a cancel is not recorded as complete
        st, val_acc = self.state, float((logs or {}).get("val_accuracy") or 0.0)
        st.epochs_done += 1
        st.last_improved = val_acc > st.best_val_accuracy
        if st.last_improved:
            st.best_val_accuracy, st.best_epoch = val_acc, st.epochs_done
            save_model_atomic(self.full_model, store.model_path(self.run_dir), include_optimizer=False)
        st.phase, st.phase_epoch = self.phase, epoch + 1
        st.lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        save_model_atomic(self.full_model, store.last_model_path(self.run_dir))
        store.update_run(self.run_dir, epochs_done=st.epochs_done, best_val_accuracy=st.best_val_accuracy,
                         best_epoch=st.best_epoch)


class HistoryRecorder(keras.callbacks.Callback):
    """history.csv, the log line of each epoch, and progress.json (the Train page's progress bar and ETA)."""

    def __init__(self, run_dir: Path, phase: str, state: RunState, clock: TrainClock, log):
        super().__init__()
        self.run_dir, self.phase, self.state, self.clock, self.log = run_dir, phase, state, clock, log
        self._epoch_start = 0.0
        self._pace_from = None
        self._last_progress = 0.0

    def eta_seconds(self, batch: int = 0, steps: int = 0) -> float | None:
        """Inside an epoch: the rest of it at its own batches' pace, plus the epochs after it at the recent
        epochs' pace (in epoch 1, at this epoch's projected length). Capped by what is left of the time budget.
        The pace starts after the epoch's first batch, which carries the model's tracing."""
        st, now = self.state, time.time()
        in_epoch = remaining_seconds(batch, steps, *self._pace_from) if steps and self._pace_from else math.nan
        times = st.epoch_seconds
        if times:
            epoch_len = float(np.mean(times[-5:]))
        else:       # epoch 1: its length as projected from its own pace
            epoch_len = now - self._epoch_start + in_epoch if in_epoch == in_epoch else None
        by_epochs = None
        if epoch_len is not None:
            if steps and in_epoch != in_epoch:
                in_epoch = max(0.0, epoch_len - (now - self._epoch_start))
            rest = in_epoch if steps else 0.0
            by_epochs = rest + epoch_len * max(0, st.total_epochs - st.epochs_done - (1 if steps else 0))
        left = self.clock.remaining()
        return min(v for v in (by_epochs, left) if v is not None) if (by_epochs, left) != (None, None) else None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()
        self._pace_from = None               # (time, batches done) once the epoch's first batch has ended

    def on_train_batch_end(self, batch, logs=None):
        if self._pace_from is None:
            self._pace_from = (time.time(), batch + 1)
        if time.time() - self._last_progress > 2.0:
            self._last_progress = time.time()
            self.write_progress(batch + 1, self.params.get("steps") or 0)

    def write_progress(self, batch: int, steps: int) -> None:
        st = self.state
        store.write_json_atomic(store.progress_path(self.run_dir), {
            "phase": self.phase, "epoch": st.epochs_done + 1, "epochs": st.total_epochs,
            "batch": batch, "batches": steps, "eta_seconds": self.eta_seconds(batch, steps), "updated": time.time()})

    def on_epoch_end(self, epoch, logs=None):
        if len(self.state.history) >= self.state.epochs_done:
            return   # the Checkpointer did not count this epoch (cut short by a cancel)
        logs, st = dict(logs or {}), self.state
        seconds = time.time() - self._epoch_start
        st.epoch_seconds.append(seconds)
        r6 = lambda v: None if v is None else round(float(v), 6)   # noqa: E731
        st.history.append({"epoch": st.epochs_done, "phase": self.phase, "loss": r6(logs.get("loss")),
                           "accuracy": r6(logs.get("accuracy")), "val_loss": r6(logs.get("val_loss")),
                           "val_accuracy": r6(logs.get("val_accuracy")), "learning_rate": r6(st.lr),
                           "seconds": round(seconds, 3)})
        store.write_history(self.run_dir, st.history)
        store.write_json_atomic(store.state_path(self.run_dir), st.to_json())
        nan = float("nan")
        eta = self.eta_seconds()
        self.log(f"epoch {st.epochs_done}/{st.total_epochs} [{self.phase}] loss {logs.get('loss', nan):.4f} "
                 f"acc {logs.get('accuracy', nan):.4f} val_loss {logs.get('val_loss', nan):.4f} "
                 f"val_acc {logs.get('val_accuracy', nan):.4f} lr {st.lr:.2e} {seconds:.1f}s"
                 f"{' *best' if st.last_improved else ''} ETA {format_seconds(eta or 0)}")
        self.write_progress(0, 0)
