"""The one training loop: dataset -> split -> model -> (frozen head, fine-tune) -> evaluation -> run store.

Transfer recipe (as in the keras-io examples), stated as code in `train`:
  phase "head":      base frozen (pre-trained weights), train the new head.
                     With augmentation off, the base's features are computed once and
                     the head trains on the cached features: epochs cost seconds.
  phase "finetune":  unfreeze the top N base layers, BatchNorm kept frozen, low learning rate.
Without pre-trained weights there is one phase, "full", training everything.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from . import runstore
from .backbones import (ModelConfigError, WeightsError, build_model, freeze_base, get_backbone,
                        resolve_input_size, shorten_batchnorm_memory, unfreeze_top)
from .config import TrainConfig
from .datasets import Dataset, DatasetError, check_trainable, load_dataset
from .errors import UserError
from .evaluation import evaluate_arrays, to_model_input
from .sharpness import estimate_sigma, mean_gradient, sharpness_gap, tune_sigma
from .kerasenv import backend, keras, library_versions
from .layers import match_sharpness_layer
from .mixup import fit_inputs
from .progress import format_seconds
from .splits import make_split, subsample


class TrainingError(UserError, RuntimeError):
    """Training could not start or continue; the message is for the user."""


class Cancelled(Exception):
    pass


# ---------------------------------------------------------------- config checks
def validate_config(cfg: TrainConfig) -> None:
    """Refuse impossible combinations before loading data or building anything."""
    bb = get_backbone(cfg.backbone)
    resolve_input_size(cfg.backbone, cfg.input_size)
    w = cfg.weights or "none"
    if w == "imagenet" and not bb.imagenet:
        raise ModelConfigError(f"{cfg.backbone} has no ImageNet weights; use --weights none or run:RUN_DIR.")
    if w.startswith("run:"):
        src = Path(w[4:])
        if not (src / "model.keras").is_file():
            raise ModelConfigError(f"--weights {w}: no model.keras in {src}; pick a completed run.")
        src_cfg = (runstore.read_json(src / "run.json", {}) or {}).get("config", {})
        if src_cfg.get("backbone") != cfg.backbone:
            raise ModelConfigError(f"--weights {w}: that run trained a {src_cfg.get('backbone')} backbone, "
                                   f"not {cfg.backbone}; its weights cannot be transferred.")
        # A different input size is fine: conv and BatchNorm weights do not depend on it, and the head is new.
    elif w not in ("none", "imagenet") and not Path(w).is_file():
        raise WeightsError(f"--weights {w}: no such file. Use imagenet, none, a weights file, or run:RUN_DIR.")
    if cfg.epochs < 0 or cfg.fine_tune_epochs < 0:
        raise ModelConfigError("epochs cannot be negative.")
    if cfg.epochs == 0 and cfg.fine_tune_epochs == 0:
        raise ModelConfigError("nothing to train: epochs and fine-tune epochs are both 0.")
    if cfg.batch_size < 1:
        raise ModelConfigError("batch size must be at least 1.")
    if not (0 < cfg.learning_rate < 1):
        raise ModelConfigError(f"learning rate {cfg.learning_rate} is out of range (0, 1).")
    if cfg.optimizer not in ("adam", "sgd"):
        raise ModelConfigError(f"unknown optimizer '{cfg.optimizer}'; use adam or sgd.")
    if cfg.schedule not in ("plateau", "cosine", "constant"):
        raise ModelConfigError(f"unknown schedule '{cfg.schedule}'; use plateau, cosine or constant.")
    if cfg.strategy not in ("none", "mirrored", "multiworker"):
        raise ModelConfigError(f"unknown strategy '{cfg.strategy}'; use none, mirrored or multiworker.")
    if cfg.strategy != "none" and backend() != "tensorflow":
        raise ModelConfigError(f"--strategy {cfg.strategy} uses tf.distribute and needs the TensorFlow backend "
                               f"(this process uses {backend()}).")
    if cfg.precision not in ("float32", "mixed_bfloat16"):
        raise ModelConfigError(f"unknown precision '{cfg.precision}'; use float32 or mixed_bfloat16.")
    if not (0 <= cfg.dropout < 1):
        raise ModelConfigError("dropout must be in [0, 1).")
    if not (0 <= cfg.mixup <= 4):
        raise ModelConfigError(f"--mixup {cfg.mixup}: use 0 (off) up to 4; 0.2 is a common choice.")
    if cfg.keep not in ("best", "last"):
        raise ModelConfigError(f"unknown --keep '{cfg.keep}'; use best (best validation epoch) or last.")
    if cfg.test_tta not in ("off", "flip", "crops"):
        raise ModelConfigError(f"unknown --test-tta '{cfg.test_tta}'; use off, flip or crops.")
    match_sigma_from_config(cfg)


def match_sigma_from_config(cfg: TrainConfig) -> float | str | None:
    """--match-sharpness off -> None (no layer), auto -> "auto", a number -> that sigma in pixels."""
    value = str(cfg.match_sharpness or "off").strip().lower()
    if value == "off":
        return None
    if value == "auto":
        return "auto"
    try:
        sigma = float(value)
    except ValueError:
        sigma = -1.0
    if not (0 <= sigma <= 4):
        raise ModelConfigError(f"--match-sharpness {cfg.match_sharpness}: use off, auto, or a blur sigma "
                               f"in pixels between 0 and 4.")
    return sigma


def _is_pretrained(cfg: TrainConfig) -> bool:
    return (cfg.weights or "none") != "none"


# ---------------------------------------------------------------- the run's callback
class RunCallback(keras.callbacks.Callback):
    """Writes history.csv, progress.json and checkpoints; honours cancel requests.

    `full_model` is the model that gets saved: when the head trains on cached
    features, the model being fitted is the head alone, but we store the whole net.
    """

    def __init__(self, run_dir: Path, full_model, phase: str, epoch_offset: int, total_epochs: int,
                 state: dict, log, cancel_flag: threading.Event):
        super().__init__()
        self.run_dir, self.full_model, self.phase = run_dir, full_model, phase
        self.offset, self.total_epochs, self.state, self.log = epoch_offset, total_epochs, state, log
        self.cancel_flag = cancel_flag
        self._epoch_start = 0.0
        self._last_progress = 0.0
        self._last_cancel_check = 0.0

    def _cancel_requested(self) -> bool:
        t = time.time()
        if t - self._last_cancel_check > 0.5:
            self._last_cancel_check = t
            if (self.run_dir / "CANCEL").exists():
                self.cancel_flag.set()
        return self.cancel_flag.is_set()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self._cancel_requested():
            self.model.stop_training = True
        # the budget's clock starts after the first batch, which traces and compiles the graph; a resumed
        # run's clock starts at the seconds its earlier epochs took, so the time it lay stopped is not counted
        self.state.setdefault("train_started", time.time() - self.state.get("seconds_before", 0.0))
        budget = self.state.get("max_train_seconds") or 0
        if budget and time.time() - self.state["train_started"] >= budget:
            # mid-epoch: a big backbone's single epoch must not overrun a fair budget; Keras still
            # validates and calls on_epoch_end for the partial epoch, so it is checkpointed as usual
            self.model.stop_training = True
        t = time.time()
        if t - self._last_progress > 2.0:
            self._last_progress = t
            steps = self.params.get("steps") or 0
            self._write_progress(batch + 1, steps)

    def _write_progress(self, batch, steps):
        done = self.state["epochs_done"]
        times = self.state["epoch_seconds"]
        per_epoch = float(np.mean(times[-5:])) if times else None
        remaining = self.total_epochs - done
        eta = per_epoch * remaining if per_epoch else None
        runstore.write_json_atomic(self.run_dir / "progress.json", {
            "phase": self.phase, "epoch": done + 1, "epochs": self.total_epochs,
            "batch": batch, "batches": steps, "eta_seconds": eta, "updated": time.time(),
        })

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.cancel_flag.is_set():
            return   # an epoch cut short by a cancel is not recorded as complete
        seconds = time.time() - self._epoch_start
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        st = self.state
        st["epochs_done"] += 1
        st["epoch_seconds"].append(seconds)
        r6 = lambda v: None if v is None else round(float(v), 6)
        row = [st["epochs_done"], self.phase, r6(logs.get("loss")), r6(logs.get("accuracy")),
               r6(logs.get("val_loss")), r6(logs.get("val_accuracy")), r6(lr), round(seconds, 3)]
        st["history"].append(row)
        runstore.write_csv_atomic(self.run_dir / "history.csv", HISTORY_HEADER, st["history"])
        val_acc = logs.get("val_accuracy", 0.0) or 0.0
        improved = val_acc > st["best_val_accuracy"]
        if improved:
            st["best_val_accuracy"] = float(val_acc)
            st["best_epoch"] = st["epochs_done"]
            save_model_atomic(self.full_model, self.run_dir / "model.keras", include_optimizer=False)
        st["phase"], st["phase_epoch"] = self.phase, epoch + 1
        st["lr"] = lr
        save_model_atomic(self.full_model, self.run_dir / "last.keras")
        runstore.write_json_atomic(self.run_dir / "state.json", {k: v for k, v in st.items() if k != "history"})
        runstore.update_run(self.run_dir, epochs_done=st["epochs_done"], best_val_accuracy=st["best_val_accuracy"],
                            best_epoch=st["best_epoch"])
        remaining = self.total_epochs - st["epochs_done"]
        eta = float(np.mean(st["epoch_seconds"][-5:])) * remaining
        self.log(f"epoch {st['epochs_done']}/{self.total_epochs} [{self.phase}] "
                 f"loss {logs.get('loss', float('nan')):.4f} acc {logs.get('accuracy', float('nan')):.4f} "
                 f"val_loss {logs.get('val_loss', float('nan')):.4f} val_acc {val_acc:.4f} "
                 f"lr {lr:.2e} {seconds:.1f}s{' *best' if improved else ''} ETA {format_seconds(eta)}")
        self._write_progress(0, 0)
        budget = self.state.get("max_train_seconds") or 0
        if budget and time.time() - self.state.get("train_started", time.time()) >= budget:
            self.log(f"training budget of {budget:g}s used: stopping")
            self.state["budget_spent"] = True
            self.model.stop_training = True


def seconds_spent(state: dict, phase: str | None = None) -> float:
    """Seconds the recorded epochs took (of one phase, or all): a resumed run's training time so far."""
    return float(sum(float(row[7]) for row in state.get("history", []) if phase is None or row[1] == phase))


HISTORY_HEADER = ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]


def save_model_atomic(model, path: Path, include_optimizer: bool = True) -> None:
    """Save to a temp name then rename: a crash or a full disk never damages the previous checkpoint.

    The best checkpoint leaves out the optimizer state (a third of the size); last.keras keeps it to resume.
    """
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    optimizer = getattr(model, "optimizer", None)
    try:
        if not include_optimizer and optimizer is not None:
            model.optimizer = None
        try:
            model.save(tmp)
        finally:
            if not include_optimizer and optimizer is not None:
                model.optimizer = optimizer
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def load_model_safe(path):
    """Keras safe mode: a model file cannot run arbitrary code (no Lambda deserialisation)."""
    from . import layers  # noqa: F401  (registers our custom layers)
    return keras.saving.load_model(path, safe_mode=True, compile=False)


# ---------------------------------------------------------------- pieces of the loop
def make_optimizer(name: str, lr: float):
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True)
    return keras.optimizers.Adam(learning_rate=lr)


def schedule_callbacks(cfg: TrainConfig, lr: float, epochs: int, seconds_before: float = 0.0) -> list:
    """seconds_before: training seconds this phase already had before a resume (for the budgeted cosine)."""
    cbs = []
    if cfg.schedule == "plateau":
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3,
                                                     min_lr=lr / 100, verbose=0))
    elif cfg.schedule == "cosine":
        cbs.append(CosineSchedule(lr, epochs, cfg.max_train_seconds, seconds_before))
    if cfg.early_stopping:
        cbs.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=cfg.early_stopping))
    return cbs


class CosineSchedule(keras.callbacks.Callback):
    """Cosine decay to ~0 over the epochs, or over the wall-clock budget when that ends first.

    With a time budget the learning rate still anneals fully, so runs cut by the clock
    (fair backbone comparisons, the CPU-trained default model) end at a low LR, not mid-descent.
    The budget's clock is read every batch and starts after the first batch: that batch traces and
    compiles the graph (a first epoch of ~33 s against 8 s later for ResNet50V2 here), which is not training,
    and a schedule that counted it annealed a big net to nothing after one epoch.
    """

    def __init__(self, base_lr: float, epochs: int, budget_seconds: float = 0.0, seconds_before: float = 0.0):
        super().__init__()
        self.base_lr, self.epochs, self.budget = base_lr, max(epochs, 1), budget_seconds
        self.seconds_before = seconds_before   # a resumed run's earlier training time
        self.start = None
        self.epoch = 0

    def _set(self, progress: float) -> None:
        lr = self.base_lr * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        self.model.optimizer.learning_rate = max(lr, self.base_lr * 1e-3)

    def _progress(self) -> float:
        by_epoch = self.epoch / self.epochs
        if not self.budget or self.start is None:
            return by_epoch
        return max(by_epoch, (time.time() - self.start) / self.budget)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._set(self._progress())

    def on_train_batch_begin(self, batch, logs=None):
        if self.budget and self.start is not None:
            self._set(self._progress())

    def on_train_batch_end(self, batch, logs=None):
        if self.budget and self.start is None:
            self.start = time.time() - self.seconds_before


def class_weight_dict(labels: np.ndarray, k: int) -> dict:
    counts = np.bincount(labels, minlength=k).astype(float)
    weights = len(labels) / (k * np.maximum(counts, 1))
    return {i: float(w) for i, w in enumerate(weights)}


def compute_features(features, x: np.ndarray, log, label: str, batch_size: int = 256) -> np.ndarray:
    """Run the frozen base once over all images (with progress and ETA)."""
    from .progress import Progress
    prog = Progress(f"caching {label} features", len(x), stream=_LogStream(log))
    out = []
    for i in range(0, len(x), batch_size):
        chunk = x[i:i + batch_size]
        out.append(np.asarray(features(chunk, training=False)))
        prog.update(len(chunk))
    return np.concatenate(out)


class _LogStream:
    def __init__(self, log):
        self.log = log

    def write(self, s):
        if s.strip():
            self.log(s.rstrip("\n"))

    def flush(self):
        pass


def fit_head_on_features(head, f_train, y_train, f_val, y_val, epochs, batch_size, callbacks, class_weight,
                         initial_epoch=0, shuffle=True):
    """Train the head alone on pre-computed base features."""
    return head.fit(f_train, y_train, validation_data=(f_val, y_val), epochs=epochs, batch_size=batch_size,
                    callbacks=callbacks, class_weight=class_weight, initial_epoch=initial_epoch,
                    shuffle=shuffle, verbose=0)


class _HeadPhaseModel(keras.Model):
    """augmentation -> features (always in inference mode) -> head, sharing the layers of the full model.

    A functional graph cannot do this: Keras 3 overrides a node's training=False with fit's training=True.
    """

    def __init__(self, model):
        super().__init__(name=model.name)
        names = [l.name for l in model.layers]
        self.aug = model.get_layer("augmentation") if "augmentation" in names else None
        self.match = match_sharpness_layer(model)
        self.base_features = model.get_layer("features")
        self.head_model = model.get_layer("head")

    def call(self, x, training=None):
        if self.aug is not None:
            x = self.aug(x, training=training)
        if self.match is not None:
            x = self.match(x, training=training)
        return self.head_model(self.base_features(x, training=False), training=training)


def head_phase_model(model):
    """The model fitted while the base is frozen (it is never saved; the full model is).

    The frozen base runs in inference mode (the keras-io recipe: base(x, training=False)), so dropout
    inside it is off and the head learns from exactly the features the feature cache gives it.
    """
    return _HeadPhaseModel(model)


def evaluate_train_part(model, ds, idx):
    """Training accuracy as training saw the faces: without the inference blur of MatchSharpness.

    The training faces already have the training sharpness; blurring them again would report a
    training accuracy below the test accuracy, which says nothing about fit.
    """
    from .inference import make_predict_fn
    layer = match_sharpness_layer(model)
    sigma = float(keras.ops.convert_to_numpy(layer.sigma)) if layer is not None else 0.0
    if layer is not None:
        layer.sigma.assign(0.0)
    try:
        m, probs = evaluate_arrays(make_predict_fn(model), ds.images[idx], ds.labels[idx], ds.class_names)
    finally:
        if layer is not None:
            layer.sigma.assign(sigma)
    if layer is not None:
        m["note"] = "measured without the inference blur (training faces are already at the training sharpness)"
    return m, probs


def _compile(model, cfg: TrainConfig, lr: float):
    model.compile(optimizer=make_optimizer(cfg.optimizer, lr),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                  metrics=["accuracy"])


def _distribution_scope(cfg: TrainConfig):
    import contextlib
    if cfg.strategy == "none":
        return contextlib.nullcontext(), 1
    import tensorflow as tf
    strategy = (tf.distribute.MirroredStrategy() if cfg.strategy == "mirrored"
                else tf.distribute.MultiWorkerMirroredStrategy())

    class _Scope:   # one strategy.scope() object can be entered only once; the loop enters one per phase
        def __enter__(self):
            self.cm = strategy.scope()
            return self.cm.__enter__()

        def __exit__(self, *exc):
            return self.cm.__exit__(*exc)
    return _Scope(), strategy.num_replicas_in_sync


def transfer_from_run(features, run_weights: str) -> None:
    """Copy the 'features' sub-model of an earlier run into this one (FER2013 -> CK+ transfer)."""
    src = load_model_safe(Path(run_weights[4:]) / "model.keras")
    src_features = src.get_layer("features")
    src_w, dst_w = src_features.get_weights(), features.get_weights()
    if len(src_w) != len(dst_w) or any(a.shape != b.shape for a, b in zip(src_w, dst_w)):
        raise ModelConfigError(f"--weights {run_weights}: that run's backbone has a different shape; "
                               "it cannot be transferred into this model.")
    features.set_weights(src_w)


def _has_tensorboard() -> bool:
    import importlib.util
    return importlib.util.find_spec("tensorboard") is not None


# ---------------------------------------------------------------- the loop
def train(cfg: TrainConfig, run_dir: str | Path | None = None, resume: bool = False,
          dataset: Dataset | None = None) -> Path:
    """Train one run end to end and return its folder. Failures are recorded in run.json and re-raised."""
    if not resume:
        validate_config(cfg)
    if run_dir is None:
        run_dir = runstore.create_run_dir(cfg.runs_dir, cfg.name or f"{cfg.backbone}-{Path(cfg.data).name}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(run_dir / "train.log", "a", encoding="utf-8")

    def log(msg: str):
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    if resume:   # the process that wrote this run was killed: drop what it left half-written
        for name in runstore.remove_stale_temp_files(run_dir):
            log(f"removed {name}, a half-written file the interrupted process left")
    cancel_flag = threading.Event()
    stop_beats = threading.Event()

    def on_sigterm(signum, frame):
        log("SIGTERM received: stopping after the current batch, keeping the checkpoint")
        cancel_flag.set()

    old_handler = None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGTERM, on_sigterm)

    def heartbeat_loop():
        while not stop_beats.wait(runstore.HEARTBEAT_SECONDS):
            try:
                runstore.update_run(run_dir, heartbeat=runstore.now_iso(), heartbeat_unix=time.time())
            except OSError:
                pass

    info = runstore.read_json(run_dir / "run.json", {}) or {}
    started = time.time()
    runstore.update_run(run_dir, name=info.get("name") or cfg.name or run_dir.name, config=cfg.to_dict(),
                        status="running", created=info.get("created") or runstore.now_iso(),
                        started=runstore.now_iso(), heartbeat=runstore.now_iso(), heartbeat_unix=time.time(),
                        pid=os.getpid(), versions=library_versions(), error=None)
    threading.Thread(target=heartbeat_loop, daemon=True).start()
    try:
        _train_inner(cfg, run_dir, resume, dataset, log, cancel_flag)
        status = "cancelled" if cancel_flag.is_set() else "completed"
        runstore.update_run(run_dir, status=status, ended=runstore.now_iso(),
                            train_seconds=round(time.time() - started + info.get("train_seconds_before", 0), 1))
        log(f"run {status}: {run_dir}")
        return run_dir
    except BaseException as e:
        msg = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        if isinstance(e, KeyboardInterrupt):
            status, msg = "cancelled", "interrupted (Ctrl-C)"
        elif isinstance(e, OSError) and getattr(e, "errno", None) == 28:
            status, msg = "failed", f"the disk is full while writing the run ({e}); the previous checkpoint is kept"
        else:
            status = "failed"
        log_file.write(traceback.format_exc())
        runstore.update_run(run_dir, status=status, error=msg, ended=runstore.now_iso())
        raise
    finally:
        stop_beats.set()
        log_file.close()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
        try:
            (run_dir / "progress.json").unlink()
        except OSError:
            pass


def _train_inner(cfg: TrainConfig, run_dir: Path, resume: bool, dataset, log, cancel_flag):
    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy(cfg.precision)
    ds = dataset or load_dataset(cfg.data, cfg.image_size, None, label_mode=cfg.label_mode)
    for p in ds.problems:
        log(f"dataset note: {p}")
    check_trainable(ds)
    split_seed = cfg.seed if cfg.split_seed < 0 else cfg.split_seed
    split = make_split(ds, cfg.split, split_seed)
    train_idx = subsample(ds.labels, split.train, cfg.max_samples, split_seed)
    eval_cap = cfg.max_samples // 4 if cfg.eval_samples < 0 else cfg.eval_samples
    val_idx = subsample(ds.labels, split.val, eval_cap, split_seed)
    test_idx = subsample(ds.labels, split.test, eval_cap, split_seed)
    if len(val_idx) == 0 or len(test_idx) == 0 or len(train_idx) == 0:
        raise DatasetError(f"the split {split.spec} left an empty part (train {len(train_idx)}, "
                           f"val {len(val_idx)}, test {len(test_idx)}); the dataset is too small for it.")
    k = len(ds.class_names)
    split_json = split.to_json(split_seed, ds.fingerprint())
    split_json["indices"] = {"train": train_idx.tolist(), "val": val_idx.tolist(), "test": test_idx.tolist()}
    split_json["counts"] = {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)}
    runstore.write_text_atomic(run_dir / "split.json", __import__("json").dumps(split_json))
    runstore.update_run(run_dir, dataset={"name": ds.name, "path": ds.path, "format": ds.format,
                                          "fingerprint": ds.fingerprint(), "num_samples": len(ds)},
                        split={"spec": split.spec, "leaks_subjects": split.leaks_subjects, "note": split.note,
                               "counts": split_json["counts"]},
                        class_names=ds.class_names, backend=backend())
    log(f"data: {ds.name} ({ds.format}), split {split.spec}: train {len(train_idx)}, val {len(val_idx)}, "
        f"test {len(test_idx)}; classes {', '.join(ds.class_names)}")

    # Sharpness compares pixels only (no labels), so looking at the test part's images here is fair.
    match = match_sigma_from_config(cfg)
    held_out = np.concatenate([val_idx, test_idx])
    gap = sharpness_gap(ds.images[train_idx], ds.images[held_out])
    tune_on_val = match == "auto" and sharpness_gap(ds.images[train_idx], ds.images[val_idx]) >= 1.5
    if gap >= 1.5:
        log(f"note: the validation/test faces are {gap:.1f}x sharper than the training faces (mean pixel "
            "gradient); " + ("a model may fail on them. --match-sharpness auto blurs faces at inference to match."
                             if match is None else "MatchSharpness will blur faces at inference to match."))
    if match == "auto":
        match = estimate_sigma(ds.images[train_idx], ds.images[held_out])
        log(f"match-sharpness auto: sigma {match:g} from the sharpness gap"
            + (" (tuned on the validation part after training)" if tune_on_val else ""))

    x_all = to_model_input(ds.images)
    # FER+ in probability mode trains on the annotators' vote distribution; every other dataset on one-hot labels
    y_all = ds.targets if ds.targets is not None else keras.utils.to_categorical(ds.labels, k).astype("float32")
    x_tr, y_tr = x_all[train_idx], y_all[train_idx]
    x_va, y_va = x_all[val_idx], y_all[val_idx]
    cw = class_weight_dict(ds.labels[train_idx], k) if cfg.class_weights else None

    state = runstore.read_json(run_dir / "state.json", None) if resume else None
    history = []
    if resume and (run_dir / "history.csv").exists():
        import csv
        with open(run_dir / "history.csv") as f:
            history = [r for r in csv.reader(f)][1:]
    state = state or {"epochs_done": 0, "phase": None, "phase_epoch": 0, "best_val_accuracy": -1.0,
                      "best_epoch": 0, "epoch_seconds": []}
    state["history"] = history[:state["epochs_done"]]
    if resume:   # the budget counts training time, not the hours a stopped run waited to be resumed
        state.pop("train_started", None)
        state["seconds_before"] = seconds_spent(state)
    state["max_train_seconds"] = cfg.max_train_seconds

    pretrained = _is_pretrained(cfg)
    fine_tune = cfg.fine_tune_epochs > 0 and cfg.fine_tune_layers != 0
    first_phase = "head" if pretrained and cfg.freeze_base else "full"
    total_epochs = cfg.epochs + (cfg.fine_tune_epochs if fine_tune else 0)

    scope, replicas = _distribution_scope(cfg)
    if replicas > 1:   # tf.distribute fails on a last batch that does not split evenly across the replicas
        n_tr, n_va = len(x_tr) - len(x_tr) % replicas, len(x_va) - len(x_va) % replicas
        x_tr, y_tr, x_va, y_va = x_tr[:n_tr], y_tr[:n_tr], x_va[:n_va], y_va[:n_va]
    with scope:
        if resume and (run_dir / "last.keras").exists():
            model = load_model_safe(run_dir / "last.keras")
            features, head = model.get_layer("features"), model.get_layer("head")
            log(f"resuming after epoch {state['epochs_done']} ({state['phase']} phase)")
        else:
            w = cfg.weights if not cfg.weights.startswith("run:") else "none"
            model, features, head = build_model(cfg.backbone, k, cfg.image_size, cfg.input_size, w,
                                                cfg.head_units, cfg.dropout, cfg.weight_decay, cfg.augment,
                                                cfg.seed, match, 2.0 * mean_gradient(ds.images[train_idx]))
            if cfg.weights.startswith("run:"):
                transfer_from_run(features, cfg.weights)
                log(f"backbone weights transferred from {cfg.weights[4:]}")
        if replicas > 1:
            log(f"tf.distribute {cfg.strategy}: {replicas} replicas")
        momentum = shorten_batchnorm_memory(model, math.ceil(len(x_tr) / (cfg.batch_size * replicas)))
        if momentum is not None:
            log(f"BatchNorm momentum {momentum:g}: short epochs, so its averages must follow the weights faster")
    runstore.update_run(run_dir, parameters=int(model.count_params()))
    if (run_dir / "model.keras").exists() is False:
        state["best_val_accuracy"] = max(state["best_val_accuracy"], -1.0)

    tb = []
    if backend() == "tensorflow" and replicas == 1 and _has_tensorboard():
        tb = [keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False)]

    # ---- phase 1: head on a frozen base, or the whole net from scratch
    phase1_done = state["phase"] in ("finetune",) or (state["phase"] == first_phase and
                                                     state["phase_epoch"] >= cfg.epochs)
    if cfg.epochs > 0 and not phase1_done and not cancel_flag.is_set():
        start_epoch = state["phase_epoch"] if state["phase"] == first_phase else 0
        with scope:
            if first_phase == "head":
                freeze_base(features)
            lr = state.get("lr", cfg.learning_rate) if start_epoch else cfg.learning_rate
            use_cache = (first_phase == "head" and not cfg.augment and cfg.feature_cache and replicas == 1
                         and match is None and not cfg.mixup)   # cached features would skip the val blur
            cb = RunCallback(run_dir, model, first_phase, state["epochs_done"] - start_epoch, total_epochs,
                             state, log, cancel_flag)
            cbs = [cb] + schedule_callbacks(cfg, cfg.learning_rate, cfg.epochs,
                                            seconds_spent(state, first_phase) if start_epoch else 0.0) + tb
            if use_cache:
                log("base frozen and augmentation off: caching the base's features once")
                f_tr = compute_features(features, x_tr, log, "train")
                f_va = compute_features(features, x_va, log, "val")
                _compile(head, cfg, lr)
                fit_head_on_features(head, f_tr, y_tr, f_va, y_va, cfg.epochs, cfg.batch_size * replicas, cbs, cw,
                                     initial_epoch=start_epoch)
            else:
                fit_model = head_phase_model(model) if first_phase == "head" else model
                _compile(fit_model, cfg, lr)
                fit_model.fit(**fit_inputs(x_tr, y_tr, cfg.batch_size * replicas, cfg.mixup, cfg.seed, cw),
                              validation_data=(x_va, y_va), epochs=cfg.epochs, callbacks=cbs,
                              initial_epoch=start_epoch, verbose=0)

    # ---- phase 2: fine-tune the top of the base at a low learning rate, BatchNorm frozen
    if fine_tune and not cancel_flag.is_set() and not state.get("budget_spent"):
        start_epoch = state["phase_epoch"] if state["phase"] == "finetune" else 0
        with scope:
            n = unfreeze_top(features, cfg.fine_tune_layers)
            log(f"fine-tuning: {n} base layers unfrozen (BatchNorm stays frozen), lr {cfg.fine_tune_lr:g}")
            _compile(model, cfg, cfg.fine_tune_lr)
            cb = RunCallback(run_dir, model, "finetune", state["epochs_done"] - start_epoch, total_epochs,
                             state, log, cancel_flag)
            cbs = [cb] + schedule_callbacks(cfg, cfg.fine_tune_lr, cfg.fine_tune_epochs,
                                            seconds_spent(state, "finetune") if start_epoch else 0.0) + tb
            model.fit(**fit_inputs(x_tr, y_tr, cfg.batch_size * replicas, cfg.mixup, cfg.seed + 1, cw),
                      validation_data=(x_va, y_va), epochs=cfg.fine_tune_epochs, callbacks=cbs,
                      initial_epoch=start_epoch, verbose=0)

    if cancel_flag.is_set():
        return
    if cfg.keep == "last":
        # A validation part of a few dozen faces (a CK+ fold holds ~30 sequences) ranks epochs by noise;
        # a schedule annealed to its end is the better pick, and the test part is never looked at for it.
        save_model_atomic(model, run_dir / "model.keras", include_optimizer=False)
        state["kept_epoch"] = state["epochs_done"]
        log(f"keeping the last epoch's weights (epoch {state['epochs_done']}, --keep last)")
    # ---- evaluate the kept checkpoint on train / val / test
    log("evaluating the best checkpoint" if cfg.keep == "best" else "evaluating the last checkpoint")
    best = load_model_safe(run_dir / "model.keras")
    if tune_on_val:   # model selection on the validation part only
        sigma = tune_sigma(best, x_va, ds.labels[val_idx][:len(x_va)], log)
        save_model_atomic(best, run_dir / "model.keras", include_optimizer=False)
        runstore.update_run(run_dir, match_sharpness_sigma=sigma)
    elif match is not None:
        runstore.update_run(run_dir, match_sharpness_sigma=match)
    from .inference import make_predict_fn
    predict = make_predict_fn(best)
    metrics = {"class_names": ds.class_names, "split": split.spec, "best_epoch": state["best_epoch"],
               "kept": cfg.keep, "kept_epoch": state.get("kept_epoch", state["best_epoch"])}
    for part, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
        m, probs = evaluate_train_part(best, ds, idx) if part == "train" else \
            evaluate_arrays(predict, ds.images[idx], ds.labels[idx], ds.class_names, tta=cfg.test_tta)
        metrics[part] = m
        if part == "test":
            rows = [[ds.sources[i], ds.class_names[ds.labels[i]], ds.class_names[int(p.argmax())],
                     *[round(float(v), 5) for v in p]] for i, p in zip(idx, probs)]
            runstore.write_csv_atomic(run_dir / "predictions.csv",
                                      ["source", "true", "predicted", *[f"p_{c}" for c in ds.class_names]], rows)
    metrics["parameters"] = int(best.count_params())
    metrics["model_bytes"] = (run_dir / "model.keras").stat().st_size
    runstore.write_json_atomic(run_dir / "metrics.json", metrics)
    tta = "" if cfg.test_tta == "off" else f", {cfg.test_tta} TTA"
    log(f"test accuracy {metrics['test']['accuracy']:.4f}, macro F1 {metrics['test']['macro_f1']:.4f} "
        f"({len(test_idx)} images{tta}); val accuracy {metrics['val']['accuracy']:.4f}")
