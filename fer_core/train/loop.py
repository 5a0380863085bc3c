"""The training recipe, as four visible steps: prepare the data, build (or resume) the model, fit each
phase, evaluate and record.

Phases (the keras-io fine-tuning recipe):
  "full"      no pre-trained weights: the whole net trains
  "head"      pre-trained weights: the new head trains on a frozen base (fer_core/train/frozen.py)
  "finetune"  then the top N base layers are unfrozen, BatchNorm kept frozen, at a low learning rate
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

from fer_core.config import TrainConfig
from fer_core.data.dataset import Dataset
from fer_core.model.backbones import ModelConfigError, build_model, freeze_base, shorten_batchnorm_memory, unfreeze_top
from fer_core.model.kerasenv import backend, keras
from fer_core.model.predict import make_predict_fn
from fer_core.model.saving import load_model_safe, save_model_atomic
from fer_core.report.evaluation import evaluate_arrays
from fer_core.runs import store
from fer_core.train.callbacks import CancelWatch, Checkpointer, HistoryRecorder, RunState, TrainClock
from fer_core.train.checks import validate_config
from fer_core.train.data import TrainData, prepare_data
from fer_core.train.frozen import compute_features, fit_head_on_features, head_phase_model
from fer_core.train.lifecycle import RunLifecycle
from fer_core.train.mixup import fit_inputs
from fer_core.train.precision import for_run as choose_precision
from fer_core.train.schedule import compile_model, schedule_callbacks


@dataclass
class Phase:
    name: str       # full | head | finetune
    epochs: int
    lr: float


def train(cfg: TrainConfig, run_dir: str | Path | None = None, resume: bool = False,
          dataset: Dataset | None = None) -> Path:
    """Train one run end to end and return its folder. Failures are recorded in run.json and re-raised."""
    if not resume:
        validate_config(cfg)
    if run_dir is None:
        run_dir = store.create_run_dir(cfg.runs_dir, cfg.name or f"{cfg.backbone}-{Path(cfg.data).name}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLifecycle(run_dir, cfg, resume) as life:
        run_recipe(cfg, run_dir, resume, dataset, life)
    return run_dir


def run_recipe(cfg: TrainConfig, run_dir: Path, resume: bool, dataset, life: RunLifecycle) -> None:
    keras.utils.set_random_seed(cfg.seed)
    precision = choose_precision(cfg.precision, run_dir, resume)
    keras.mixed_precision.set_global_policy(precision.used)
    store.update_run(run_dir, precision=precision.to_dict())
    life.log(f"precision: {precision.reason} ({precision.device})")
    data = prepare_data(cfg, run_dir, dataset, life.log)
    cfg = spread_over_replicas(cfg, data, life.log)
    state = RunState.load(run_dir) if resume else RunState()
    state.total_epochs = sum(p.epochs for p in phases(cfg))
    model = build_or_resume(cfg, run_dir, data, state, life.log)
    clock = TrainClock(cfg.max_train_seconds, state.seconds_spent(), state, life.log)
    if resume and cfg.max_train_seconds:
        life.log(f"time budget: {state.seconds_spent():.1f} s of {cfg.max_train_seconds:g} s used by the epochs "
                 "before (the time the run lay stopped does not count)")
    for phase in phases(cfg):
        if life.cancel_flag.is_set() or state.budget_spent:
            break
        fit_phase(phase, cfg, run_dir, model, data, state, clock, life)
    if not life.cancel_flag.is_set():
        evaluate_and_record(cfg, run_dir, model, data, state, life.log)


def phases(cfg: TrainConfig) -> list[Phase]:
    pretrained = (cfg.weights or "none") != "none"
    first = Phase("head" if pretrained and cfg.freeze_base else "full", cfg.epochs, cfg.learning_rate)
    out = [first] if cfg.epochs > 0 else []
    if cfg.fine_tune_epochs > 0 and cfg.fine_tune_layers != 0:
        out.append(Phase("finetune", cfg.fine_tune_epochs, cfg.fine_tune_lr))
    return out


# ---------------------------------------------------------------- step 2: build or resume
def build_or_resume(cfg: TrainConfig, run_dir: Path, data: TrainData, state: RunState, log):
    with distribution_scope(cfg):
        if store.last_model_path(run_dir).exists() and state.epochs_done:
            model = load_model_safe(store.last_model_path(run_dir))
            log(f"resuming after epoch {state.epochs_done} ({state.phase} phase)")
        else:
            w = "none" if cfg.weights.startswith("run:") else cfg.weights
            model, features, _ = build_model(cfg.backbone, data.num_classes, image_size=cfg.image_size,
                                             input_size=cfg.input_size, weights=w, head_units=cfg.head_units,
                                             dropout=cfg.dropout, l2=cfg.weight_decay, augment=cfg.augment,
                                             photometric=cfg.photometric, seed=cfg.seed)
            if cfg.weights.startswith("run:"):
                transfer_from_run(features, cfg.weights)
                log(f"backbone weights transferred from {cfg.weights[4:]}")
        momentum = shorten_batchnorm_memory(model, math.ceil(len(data.x_train) / cfg.batch_size))
        if momentum is not None:
            log(f"BatchNorm momentum {momentum:g}: short epochs, so its averages must follow the weights faster")
    store.update_run(run_dir, parameters=int(model.count_params()))
    return model


def transfer_from_run(features, run_weights: str) -> None:
    """Copy the 'features' sub-model of an earlier run into this one (FER2013 -> CK+ transfer)."""
    src = load_model_safe(store.model_path(run_weights[4:])).get_layer("features")
    src_w, dst_w = src.get_weights(), features.get_weights()
    if len(src_w) != len(dst_w) or any(a.shape != b.shape for a, b in zip(src_w, dst_w)):
        raise ModelConfigError(f"weights {run_weights}: that run's backbone has a different shape; "
                               "it cannot be transferred into this model.")
    features.set_weights(src_w)


@functools.cache
def _strategy(name: str):
    """One tf.distribute strategy per process: variables made under it must be trained under it."""
    import tensorflow as tf
    return tf.distribute.MirroredStrategy() if name == "mirrored" else tf.distribute.MultiWorkerMirroredStrategy()


def distribution_scope(cfg: TrainConfig):
    """tf.distribute's scope for --strategy mirrored|multiworker (a new scope object each time: one can be
    entered only once); a no-op otherwise."""
    return contextlib.nullcontext() if cfg.strategy == "none" else _strategy(cfg.strategy).scope()


def spread_over_replicas(cfg: TrainConfig, data: TrainData, log) -> TrainConfig:
    """With N replicas each step takes N batches, and tf.distribute fails on a last batch that does not
    split evenly: the parts are trimmed to a multiple of N. Returns the config with the global batch size."""
    n = 1 if cfg.strategy == "none" else _strategy(cfg.strategy).num_replicas_in_sync
    if n == 1:
        return cfg
    log(f"tf.distribute {cfg.strategy}: {n} replicas")
    n_tr, n_va = len(data.x_train) - len(data.x_train) % n, len(data.x_val) - len(data.x_val) % n
    data.x_train, data.y_train, data.x_val, data.y_val = (data.x_train[:n_tr], data.y_train[:n_tr],
                                                          data.x_val[:n_va], data.y_val[:n_va])
    return dataclasses.replace(cfg, batch_size=cfg.batch_size * n)


# ---------------------------------------------------------------- step 3: fit a phase
def fit_phase(phase: Phase, cfg: TrainConfig, run_dir: Path, model, data: TrainData, state: RunState,
              clock: TrainClock, life: RunLifecycle) -> None:
    if state.phase == phase.name and state.phase_epoch >= phase.epochs or \
            (phase.name != "finetune" and state.phase == "finetune"):
        return   # a resumed run that already finished this phase
    start_epoch = state.phase_epoch if state.phase == phase.name else 0
    features = model.get_layer("features")
    with distribution_scope(cfg):
        if phase.name == "head":
            freeze_base(features)
        elif phase.name == "finetune":
            n = unfreeze_top(features, cfg.fine_tune_layers)
            life.log(f"fine-tuning: {n} base layers unfrozen (BatchNorm stays frozen), lr {phase.lr:g}")
        lr = (state.lr or phase.lr) if start_epoch else phase.lr
        cbs = [clock, CancelWatch(run_dir, life.cancel_flag),
               Checkpointer(run_dir, model, phase.name, state, life.cancel_flag),
               HistoryRecorder(run_dir, phase.name, state, clock, life.log),
               *schedule_callbacks(cfg, phase.lr, phase.epochs, clock), *tensorboard(cfg, run_dir)]
        use_cache = (phase.name == "head" and not cfg.augment and cfg.feature_cache and not cfg.mixup
                     and cfg.strategy == "none")
        if use_cache:
            life.log("base frozen and augmentation off: caching the base's features once")
            f_tr = compute_features(features, data.x_train, life.log, "train")
            f_va = compute_features(features, data.x_val, life.log, "val")
            head = model.get_layer("head")
            compile_model(head, cfg, lr)
            fit_head_on_features(head, f_tr, data.y_train, f_va, data.y_val, phase.epochs, cfg.batch_size, cbs,
                                 data.class_weight, initial_epoch=start_epoch)
            return
        fit_model = head_phase_model(model) if phase.name == "head" else model
        compile_model(fit_model, cfg, lr)
        seed = cfg.seed + (1 if phase.name == "finetune" else 0)
        fit_model.fit(**fit_inputs(data.x_train, data.y_train, cfg.batch_size, cfg.mixup, seed, data.class_weight),
                      validation_data=(data.x_val, data.y_val), epochs=phase.epochs, callbacks=cbs,
                      initial_epoch=start_epoch, verbose=0)


def tensorboard(cfg: TrainConfig, run_dir: Path) -> list:
    """TensorBoard event files beside the run's own files (`tensorboard --logdir runs` works)."""
    if backend() != "tensorflow" or cfg.strategy != "none" or importlib.util.find_spec("tensorboard") is None:
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False)]


# ---------------------------------------------------------------- step 4: evaluate and record
def evaluate_and_record(cfg: TrainConfig, run_dir: Path, model, data: TrainData, state: RunState, log) -> None:
    if cfg.keep == "last":
        # A validation part of a few dozen faces (a CK+ fold holds ~30 sequences) ranks epochs by noise;
        # a schedule annealed to its end is the better pick, and the test part is never looked at for it.
        save_model_atomic(model, store.model_path(run_dir), include_optimizer=False)
        state.kept_epoch = state.epochs_done
        log(f"keeping the last epoch's weights (epoch {state.epochs_done}, --keep last)")
    log("evaluating the best checkpoint" if cfg.keep == "best" else "evaluating the last checkpoint")
    predict = make_predict_fn(load_model_safe(store.model_path(run_dir)))
    ds = data.ds
    metrics = {"class_names": ds.class_names, "split": (store.read_json(store.split_path(run_dir), {}) or {})
               .get("spec"), "best_epoch": state.best_epoch, "kept": cfg.keep,
               "kept_epoch": state.kept_epoch or state.best_epoch}
    for part, idx in (("train", data.train_idx), ("val", data.val_idx), ("test", data.test_idx)):
        tta = "off" if part == "train" else cfg.test_tta
        metrics[part], probs = evaluate_arrays(predict, ds.images[idx], ds.labels[idx], ds.class_names, tta=tta)
        if part == "test":
            rows = [[ds.sources[i], ds.class_names[ds.labels[i]], ds.class_names[int(p.argmax())],
                     *[round(float(v), 5) for v in p]] for i, p in zip(idx, probs)]
            store.write_csv_atomic(store.predictions_path(run_dir),
                                   ["source", "true", "predicted", *[f"p_{c}" for c in ds.class_names]], rows)
    metrics["parameters"] = int(model.count_params())
    metrics["model_bytes"] = store.model_path(run_dir).stat().st_size
    store.write_json_atomic(store.metrics_path(run_dir), metrics)
    tta = "" if cfg.test_tta == "off" else f", {cfg.test_tta} TTA"
    log(f"test accuracy {metrics['test']['accuracy']:.4f}, macro F1 {metrics['test']['macro_f1']:.4f} "
        f"({len(data.test_idx)} images{tta}); val accuracy {metrics['val']['accuracy']:.4f}")
