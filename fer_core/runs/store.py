"""The run store: one folder per training run under `runs/`.

Format (documented in the README, readable without this package):
  run.json          config, dataset fingerprint, split, status, heartbeat, times, error, versions
  history.csv       one row per epoch
  metrics.json      evaluation of the best checkpoint
  predictions.csv   one row per test sample
  split.json        which samples went where
  model.keras       best checkpoint (by validation accuracy)
  last.keras        latest checkpoint, for resume
  train.log         the training process's output
  calibration.json  the temperature fitted on the validation part (`calibrate`), with NLL/ECE before and after
  name.json         the name given on the Runs page (Rename)
  launch.json       the pid and host of the training process the queue launched (until it writes its own)
  CANCEL, RESUME    the app's requests: stop this run; queue it again to continue from last.keras
Every file is written atomically (temp file + rename) so a crash never leaves half a file.

One writer per file at any time: while a training process lives, only it writes run.json (the queue writes it
only when no process does: as it creates a queued run, just before it launches one, after one died without a
word); the app never rewrites it, and asks through files of its own (name.json, CANCEL, RESUME).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import fcntl
import io
import json
import math
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path

from fer_core.errors import UserError

HEARTBEAT_SECONDS = 10
STALE_AFTER_SECONDS = 90   # a running run whose heartbeat is older than this has died


class RunStoreError(UserError):
    """A run folder or name problem, with a message meant for the user."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- atomic writes
def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_stale_temp_files(run_dir) -> list[str]:
    """Delete the half-written temp files a killed process left in a run folder (a SIGKILL between an atomic
    write's temp file and its rename); the files they were meant to replace are intact. Returns their names."""
    removed = []
    for p in Path(run_dir).glob(".*"):
        if p.is_file() and (p.name.endswith(".tmp") or p.name.endswith(".tmp.keras")):
            try:
                p.unlink()
                removed.append(p.name)
            except OSError:
                pass
    return removed


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv_atomic(path, header: list[str], rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _json_default(o):
    try:
        import numpy as np
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def read_json(path, default=None):
    """Read a JSON file; a missing or damaged file gives `default` instead of an exception."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default



# ---------------------------------------------------------------- the files of a run (their one owner)
RUN_JSON, MODEL, LAST_MODEL, STATE = "run.json", "model.keras", "last.keras", "state.json"
HISTORY, METRICS, PREDICTIONS, SPLIT = "history.csv", "metrics.json", "predictions.csv", "split.json"
PROGRESS, LOG, CANCEL, TFLITE, EXPORT = "progress.json", "train.log", "CANCEL", "model.tflite", "export.json"
CALIBRATION = "calibration.json"   # the temperature fitted on the run's validation part (fer_core calibrate)
NAME, RESUME = "name.json", "RESUME"   # the app's: the name given on the Runs page; a request to resume
LAUNCH = "launch.json"                 # the queue's: the pid and host of the process it launched
RUN_LOCK = ".run.lock"             # held while run.json is merged (update_run); empty, never read


def run_json_path(run_dir) -> Path:
    return Path(run_dir) / RUN_JSON


def model_path(run_dir) -> Path:
    return Path(run_dir) / MODEL


def last_model_path(run_dir) -> Path:
    return Path(run_dir) / LAST_MODEL


def state_path(run_dir) -> Path:
    return Path(run_dir) / STATE


def history_path(run_dir) -> Path:
    return Path(run_dir) / HISTORY


def metrics_path(run_dir) -> Path:
    return Path(run_dir) / METRICS


def predictions_path(run_dir) -> Path:
    return Path(run_dir) / PREDICTIONS


def split_path(run_dir) -> Path:
    return Path(run_dir) / SPLIT


def progress_path(run_dir) -> Path:
    return Path(run_dir) / PROGRESS


def log_path(run_dir) -> Path:
    return Path(run_dir) / LOG


def tflite_path(run_dir) -> Path:
    return Path(run_dir) / TFLITE


def export_json_path(run_dir) -> Path:
    return Path(run_dir) / EXPORT


def calibration_path(run_dir) -> Path:
    return Path(run_dir) / CALIBRATION


def model_stamp(run_dir) -> tuple:
    """(file, modification time in ns, size) of each file a loaded model is made from: the key of a cache of
    loaded models, so a model re-trained, re-exported or re-calibrated in place is loaded again."""
    return files_stamp(model_path(run_dir), tflite_path(run_dir), export_json_path(run_dir), calibration_path(run_dir))


def files_stamp(*paths) -> tuple:
    """(file, modification time in ns, size) of each path ((name, 0, 0) where absent): a cache key that changes
    when any of the files is written."""
    out = []
    for path in map(Path, paths):
        try:
            s = path.stat()
            out.append((path.name, s.st_mtime_ns, s.st_size))
        except OSError:
            out.append((path.name, 0, 0))
    return tuple(out)


def read_temperature(run_dir) -> float | None:
    """The run's fitted temperature, or None (no calibration.json, or a damaged one: then the model's own
    probabilities are shown, as before calibration existed)."""
    t = (read_json(calibration_path(run_dir), {}) or {}).get("temperature")
    return float(t) if isinstance(t, (int, float)) and 0 < t < float("inf") else None


def read_class_shift(run_dir) -> list[float] | None:
    """The run's logit adjustment (per-class offsets added before its temperature), or None without one."""
    adjustment = (read_json(calibration_path(run_dir), {}) or {}).get("logit_adjustment") or {}
    shift = adjustment.get("shift") if isinstance(adjustment, dict) else None
    ok = isinstance(shift, list) and shift and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in shift)
    return [float(v) for v in shift] if ok else None


def cancel_requested(run_dir) -> bool:
    return (Path(run_dir) / CANCEL).exists()


def name_path(run_dir) -> Path:
    return Path(run_dir) / NAME


def clear_launch(run_dir) -> None:
    with contextlib.suppress(FileNotFoundError):
        (Path(run_dir) / LAUNCH).unlink()


def write_launch(run_dir, pid: int) -> None:
    write_json_atomic(Path(run_dir) / LAUNCH, {"pid": pid, "host": socket.gethostname(), "launched": now_iso()})


def with_launch(run_dir, info: dict) -> dict:
    """run.json's record, with the launcher's pid and host while the launched process has not written its own
    (it imports TensorFlow first): so a child that dies on the way reads as failed at once."""
    if info.get("status") != "running" or info.get("pid"):
        return info
    launch = read_json(Path(run_dir) / LAUNCH, {}) or {}
    return {**info, **{k: launch[k] for k in ("pid", "host") if launch.get(k)}}


def request_resume(run_dir) -> None:
    write_text_atomic(Path(run_dir) / RESUME, now_iso() + "\n")


def resume_requested(run_dir) -> float | None:
    """When a resume was asked for (the request file's time), or None."""
    try:
        return os.stat(Path(run_dir) / RESUME).st_mtime
    except OSError:
        return None


def clear_resume(run_dir) -> None:
    with contextlib.suppress(FileNotFoundError):
        (Path(run_dir) / RESUME).unlink()


def request_cancel(run_dir) -> None:
    write_text_atomic(Path(run_dir) / CANCEL, now_iso() + "\n")


def clear_cancel(run_dir) -> None:
    try:
        (Path(run_dir) / CANCEL).unlink()
    except FileNotFoundError:
        pass


def read_config(run_dir) -> dict:
    return (read_json(run_json_path(run_dir), {}) or {}).get("config") or {}


# ---------------------------------------------------------------- history.csv: one row per epoch, read by name
HISTORY_COLUMNS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


def _history_value(column: str, text):
    """A cell as its column holds it: phase as text, epoch as an int, the rest as floats (None when empty)."""
    if column == "phase":
        return text
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return int(value) if column == "epoch" and value.is_integer() else value


def read_history(run_dir) -> list[dict]:
    """history.csv as one dict per epoch, keyed by its header's column names (HISTORY_COLUMNS for every run
    this version wrote); [] when absent or damaged. The one reader of the file: nothing reads it by position."""
    try:
        with open(history_path(run_dir), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []
    return [{k: _history_value(k, v) for k, v in r.items() if k is not None} for r in rows]


def write_history(run_dir, rows: list[dict]) -> None:
    """history.csv from one dict per epoch (the training process is its one writer)."""
    write_csv_atomic(history_path(run_dir), list(HISTORY_COLUMNS), [[r.get(c) for c in HISTORY_COLUMNS] for r in rows])


# ---------------------------------------------------------------- run folders
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def safe_slug(name: str, max_len: int = 60) -> str:
    """A user's run name made safe as one folder name: no separators, no '..', no absolute paths."""
    slug = _SLUG.sub("-", name or "").strip(".-_")
    slug = slug.replace("..", "-")
    return slug[:max_len] or "run"


def create_run_dir(runs_dir: str | os.PathLike, name: str) -> Path:
    """A new, unique run folder. mkdir without exist_ok makes two simultaneous launches distinct."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        run_dir = runs_dir / f"{stamp}-{safe_slug(name)}-{secrets.token_hex(2)}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise RunStoreError(f"could not create a new run folder in {runs_dir}")


@contextlib.contextmanager
def exclusive_lock(lock_file):
    """An flock on LOCK_FILE (made empty if missing) for as long as the block runs, across processes."""
    with open(lock_file, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def update_run(run_dir, **fields) -> dict:
    """Merge fields into run.json (atomically, and under the run's lock: the training's heartbeat, checkpointer
    and final status and the app's rename, resume and queue merge into this one file from several processes,
    and none may lose another's fields)."""
    path = run_json_path(run_dir)
    with exclusive_lock(Path(run_dir) / RUN_LOCK):
        info = read_json(path, default={}) or {}
        info.update(fields)
        write_json_atomic(path, info)
    return info


def process_alive(pid) -> bool:
    """True if the process exists and is not a zombie; reaps it if it is our own finished child."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass   # not our child (launched by another server, or before a restart)
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def effective_status(info: dict) -> str:
    """A 'running' run whose process is gone is shown as failed: at once on the machine that ran it (its
    pid no longer exists), else when its heartbeat is older than STALE_AFTER_SECONDS."""
    status = info.get("status", "unknown")
    if status != "running":
        return status
    if info.get("host") == socket.gethostname() and info.get("pid") and not process_alive(info.get("pid")):
        return "failed"
    if time.time() - (info.get("heartbeat_unix") or 0) > STALE_AFTER_SECONDS:
        return "failed"
    return status


def read_run(run_dir) -> dict:
    """Everything about one run that the pages and CLI show; never raises on damaged files."""
    run_dir = Path(run_dir)
    info = read_json(run_json_path(run_dir), default=None)
    problems = []
    if info is None:
        problems.append("run.json is missing or damaged")
        info = {}
    metrics = read_json(metrics_path(run_dir), default=None)
    if metrics is None and metrics_path(run_dir).exists():
        problems.append("metrics.json is damaged")
    status = shown_status(run_dir, info)
    if status == "failed" and info.get("status") == "running":
        info.setdefault("error", "the training process stopped without finishing (it was killed, or its machine "
                                 "stopped); Resume continues from its last checkpoint")
    return run_record(run_dir.name, str(run_dir), info, metrics, status=status, name=given_name(run_dir),
                      has_model=model_path(run_dir).exists(), problems=problems)


def shown_status(run_dir, info: dict) -> str:
    """The status the pages show: run.json's, judged with the launcher's pid while the launched process has not
    written its own, and 'queued' while a resume the app asked for waits for the queue."""
    status = effective_status(with_launch(run_dir, info)) if info else "damaged"
    if status in ("failed", "cancelled") and resume_requested(run_dir) is not None:
        status = "queued"
    return status


def given_name(run_dir) -> str | None:
    """The name given on the Runs page (name.json), or None; a damaged file counts as none."""
    record = read_json(name_path(run_dir), {})
    name = record.get("name") if isinstance(record, dict) else None
    return name.strip()[:120] or None if isinstance(name, str) else None


def run_record(run_id: str, path: str | None, info: dict, metrics: dict | None, *, status: str,
               name: str | None = None, has_model: bool = False, problems: list | None = None) -> dict:
    """The listed shape of a run, from its run.json and metrics.json contents: what read_run returns for a
    folder, and what the committed reference collections (fer_core/runs/archive.py) give for their records."""
    cfg = info.get("config", {})
    test = (metrics or {}).get("test", {}) if isinstance(metrics, dict) else {}
    return {
        "id": run_id,
        "path": path,
        "name": name or info.get("name") or run_id,
        "status": status,
        "dataset": info.get("dataset", {}).get("name", Path(cfg.get("data", "")).name),
        "backbone": cfg.get("backbone"),
        "weights": cfg.get("weights"),
        "epochs_done": info.get("epochs_done", 0),
        "best_val_accuracy": info.get("best_val_accuracy"),
        "test_accuracy": test.get("accuracy"),
        "macro_f1": test.get("macro_f1"),
        "train_seconds": info.get("train_seconds"),
        "created": info.get("created"),
        "error": info.get("error"),
        "has_model": has_model,
        "problems": problems or [],
        "info": info,
        "metrics": metrics,
    }


def run_history(run: dict) -> list[dict]:
    """A listed run's epochs: a reference record carries them with it (it has no folder), a run reads its
    history.csv."""
    if "history" in run:
        return run["history"]
    return read_history(run["path"]) if run.get("path") else []


_LISTED: dict[str, tuple[tuple, dict]] = {}   # run folder -> (its files' modification times, read_run of it)
_STAMPED = (RUN_JSON, METRICS, HISTORY, MODEL, NAME, RESUME)


def _stamp(run_dir: Path) -> tuple:
    """Modification times (and sizes) of the folder and of the files a listing shows: an atomic write renames
    into the folder (its time changes), an in-place edit changes the file's own time and usually its size."""
    return files_stamp(run_dir, *(run_dir / f for f in _STAMPED))


def _read_run_cached(run_dir: Path) -> dict:
    """read_run, re-read only when the folder changed. Why: the Runs and Compare pages list every run on each
    rerun, and parsing ~200 run.json and metrics.json files made them several times slower than Home. A run
    recorded as running is always re-read: its shown status depends on its heartbeat's age and its process."""
    stamp = _stamp(run_dir)
    key = str(run_dir)
    hit = _LISTED.get(key)
    if hit is not None and hit[0] == stamp and hit[1]["info"].get("status") != "running":
        return dict(hit[1])
    run = read_run(run_dir)
    _LISTED[key] = (stamp, run)
    return dict(run)


def list_runs(runs_dir) -> list[dict]:
    """All runs, newest first (by when they were created, not by folder name: committed runs have names, not
    time stamps). Folders without run.json are listed as damaged, not skipped."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [_read_run_cached(d) for d in runs_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return sorted(runs, key=lambda r: (r.get("created") or "", r["id"]), reverse=True)


def rename_run(run_dir, new_name: str) -> None:
    """Renaming changes the display name only (name.json: run.json belongs to the training, which may be writing
    it); the folder (and links to it) stay. A run folder that is a link (to a run stored elsewhere) is not
    written through: the store writes only inside itself."""
    new_name = (new_name or "").strip()
    if not new_name:
        raise RunStoreError("a run name cannot be empty")
    if Path(run_dir).is_symlink():
        raise RunStoreError(f"{Path(run_dir).name} is a link to {Path(run_dir).resolve()}, outside the run store; "
                            "rename it where it is stored.")
    write_json_atomic(name_path(run_dir), {"name": new_name[:120], "renamed": now_iso()})


def delete_run(runs_dir, run_dir) -> None:
    run_dir = Path(run_dir).resolve()
    if Path(runs_dir).resolve() not in run_dir.parents:
        raise RunStoreError(f"{run_dir} is not inside {runs_dir}; not deleting")
    shutil.rmtree(run_dir)
