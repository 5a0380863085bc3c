"""K-fold cross-validation: train every fold of a subject-kfold (or random) split, then summarise.

With members > 1 each fold trains that many models on the same split from different seeds and scores the
mean of their test probabilities (an ensemble). With several input sizes each fold trains those models at
every size (faces resized inside the model): a multi-scale ensemble, whose members differ by more than
their seed. A fold whose run already completed with the same config is reused, so an interrupted k-fold
picks up where it stopped, and an ensemble reuses the single-model runs of each size.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path

import numpy as np

from fer_core.config import TrainConfig
from fer_core.data.datasets import load_dataset
from fer_core.errors import UserError
from fer_core.report.evaluation import classification_metrics
from fer_core.runs import store

MEMBER_SEED_STEP = 1000   # member j of a fold trains with seed + j * 1000; member 0 is the plain run


class KfoldStopped(UserError, RuntimeError):
    """A fold was cancelled (SIGTERM or the run's Cancel button): the k-fold stops rather than go on without it."""


def fold_spec(base: str, k: int, fold: int) -> str:
    """'subject-kfold' -> subject-kfold:K:FOLD; 'random:0.1' -> random:0.1 with a per-fold seed."""
    if base.startswith("random"):
        return base if ":" in base else "random:0.1"
    return f"subject-kfold:{k}:{fold}"


def member_config(cfg: TrainConfig, group: str, spec: str, fold: int, member: int, tag: str = "") -> TrainConfig:
    """The config of one model of one fold: member 0 is exactly the single-model k-fold run."""
    split_seed = cfg.seed + fold if spec.startswith("random") else cfg.seed
    name = f"{group}-fold{fold}{tag}" + (f"-m{member}" if member else "")
    if member == 0:
        return dataclasses.replace(cfg, split=spec, seed=split_seed, name=name)
    return dataclasses.replace(cfg, split=spec, seed=split_seed + member * MEMBER_SEED_STEP, split_seed=split_seed,
                               name=name)


def _same_training(a: dict, b: dict) -> bool:
    """Configs that train the same model: everything but the run's name and where the store is."""
    skip = {"name", "runs_dir"}
    defaults = TrainConfig().to_dict()
    return all(a.get(k, defaults[k]) == b.get(k, defaults[k]) for k in defaults if k not in skip)


def find_completed(runs_dir, cfg: TrainConfig) -> Path | None:
    """A completed run in the store trained with this config (same data, split, seeds, options), if any.

    Only runs that still hold their model count: the reference records committed without model.keras
    are there to be looked at, and running the reference script on a fresh clone must train again."""
    want = cfg.to_dict()
    for r in store.list_runs(runs_dir):
        d = Path(r["path"])
        files = (store.model_path(d), store.metrics_path(d), store.predictions_path(d))
        if (r.get("status") == "completed" and all(f.is_file() for f in files)
                and _same_training((r.get("info") or {}).get("config", {}), want)):
            return d
    return None


def read_test_probs(run_dir: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(sources, true labels, probabilities) from a run's predictions.csv, in its test order."""
    with open(store.predictions_path(run_dir), newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([[float(v) for v in r[3:]] for r in rows])


def ensemble_metrics(run_dirs: list[Path], class_names: list[str]) -> dict:
    """Test metrics of the mean of the members' test probabilities (members must share the test faces)."""
    parts = [read_test_probs(d) for d in run_dirs]
    sources, truth, _ = parts[0]
    for other, _, _ in parts[1:]:
        if other != sources:
            raise ValueError("ensemble members were tested on different faces; they must share the split.")
    probs = np.mean([p for _, _, p in parts], axis=0)
    y = np.array([class_names.index(t) for t in truth])
    return classification_metrics(y, probs, class_names)


def ensemble_val_accuracy(run_dirs: list[Path], ds, tta: str) -> float:
    """Validation accuracy of the members' mean probabilities, each member's own model on the fold's validation
    faces (with the test's TTA). Models are at hand here: kfold trains them, or reuses only runs that keep them."""
    from fer_core.report.evaluation import predict_probs, to_model_input
    from fer_core.runs.run_model import RunModel
    idx = np.array((store.read_json(store.split_path(run_dirs[0]), {}) or {})["indices"]["val"], dtype=np.int64)
    x = to_model_input(ds.images[idx])
    probs = [predict_probs(RunModel.load(d).predict_fn, x, tta=tta)
             for d in run_dirs]
    return float(np.mean(np.mean(probs, axis=0).argmax(1) == ds.labels[idx]))


def _mean_or_none(values) -> float | None:
    """The mean where every value is known (a run stopped before validating has none)."""
    return float(np.mean(values)) if values and all(v is not None for v in values) else None


def _fold_models(cfg: TrainConfig, ds, group: str, spec: str, fold: int, folds: int, sizes: list[int],
                 members: int, reuse: bool, log) -> list[Path]:
    """Train (or reuse) every model of one fold: each input size x each member."""
    from fer_core.train.loop import train
    run_dirs = []
    for size in sizes:
        tag = f"-{size}px" if len(sizes) > 1 else ""
        for member in range(members):
            mcfg = member_config(dataclasses.replace(cfg, input_size=size), group, spec, fold, member, tag)
            which = f"{f' {size}px' if tag else ''}{f' member {member}' if members > 1 else ''}"
            run_dir = find_completed(cfg.runs_dir, mcfg) if reuse else None
            if run_dir is not None:   # its kfold tag stays that of the group that trained it
                log(f"fold {fold}{which}: reusing the completed run {run_dir}")
            else:
                run_dir = train(mcfg, dataset=ds)
                if (store.read_json(store.run_json_path(run_dir), {}) or {}).get("status") != "completed":
                    raise KfoldStopped(f"fold {fold} was cancelled ({run_dir}), so the k-fold stopped with no "
                                       "summary; run the same command again to go on: completed folds are reused.")
                store.update_run(run_dir, kfold={"group": group, "fold": fold, "folds": folds,
                                                    "member": member, "input_size": size})
            run_dirs.append(Path(run_dir))
    return run_dirs


def _fold_entry(fold: int, spec: str, run_dirs: list[Path], ds, tta: str) -> dict:
    """One fold's figures: its model's, or its ensemble's mean probabilities."""
    ensemble = len(run_dirs) > 1
    runs = [store.read_json(store.metrics_path(d), {}) or {} for d in run_dirs]
    test = ensemble_metrics(run_dirs, ds.class_names) if ensemble else runs[0].get("test", {})
    entry = {"fold": fold, "run": str(run_dirs[0]), "split": spec,
             "test_accuracy": test.get("accuracy"), "macro_f1": test.get("macro_f1"),
             "train_accuracy": float(np.mean([m.get("train", {}).get("accuracy") or 0 for m in runs])),
             # the fold's validation people (never its test people): what a recipe may be chosen by
             "val_accuracy": (ensemble_val_accuracy(run_dirs, ds, tta) if ensemble
                              else _mean_or_none([m.get("val", {}).get("accuracy") for m in runs])),
             "test_samples": test.get("num_samples")}
    if ensemble:
        entry["members"] = [str(d) for d in run_dirs]
        entry["member_accuracies"] = [m.get("test", {}).get("accuracy") for m in runs]
    return entry


def _summary(cfg: TrainConfig, group: str, base_split: str, folds: int, members: int, sizes: list[int],
             per_fold: list[dict], seconds: float) -> dict:
    accs = np.array([f["test_accuracy"] for f in per_fold], dtype=float)
    f1s = np.array([f["macro_f1"] for f in per_fold], dtype=float)
    run_dirs = [r for f in per_fold for r in f.get("members", [f["run"]])]
    return {
        "group": group, "data": cfg.data, "backbone": cfg.backbone, "weights": cfg.weights,
        "split": base_split, "folds": folds, "members": members, "input_sizes": sizes, "config": cfg.to_dict(),
        "mean_accuracy": float(accs.mean()), "std_accuracy": float(accs.std(ddof=1)) if folds > 1 else 0.0,
        "min_accuracy": float(accs.min()), "max_accuracy": float(accs.max()),
        "mean_val_accuracy": _mean_or_none([f["val_accuracy"] for f in per_fold]),
        "mean_macro_f1": float(f1s.mean()), "std_macro_f1": float(f1s.std(ddof=1)) if folds > 1 else 0.0,
        "seconds": round(seconds, 1),
        "train_seconds_all_runs": round(sum((store.read_json(store.run_json_path(r), {}) or {})
                                            .get("train_seconds") or 0 for r in run_dirs), 1),
        "per_fold": per_fold, "created": store.now_iso(),
    }


def run_kfold(cfg: TrainConfig, folds: int = 10, summary_path: str | None = None, members: int = 1,
              input_sizes: list[int] | None = None, reuse: bool = True, log=print) -> dict:
    """Train `folds` x `input_sizes` x `members` runs and write a summary json with mean, std and per-fold figures."""
    from fer_core.model.backbones import ModelConfigError
    from fer_core.train.checks import validate_config
    if folds < 2:
        raise ModelConfigError(f"--folds {folds}: a cross-validation needs at least 2 folds (each fold tests on "
                               "1/K of the people and trains on the rest). Use --folds 2 or more (10 is usual), or "
                               "`train` for a single split.")
    if members < 1:
        raise ModelConfigError(f"--members {members}: train at least 1 model per fold.")
    sizes = list(dict.fromkeys(input_sizes or [cfg.input_size]))     # in the order given, each once
    for size in sizes:
        validate_config(dataclasses.replace(cfg, input_size=size))
    ds = load_dataset(cfg.data, cfg.image_size, label_mode=cfg.label_mode)   # loaded once, shared by every fold
    base_split = cfg.split if cfg.split not in ("auto", "official") else "subject-kfold"
    group = store.safe_slug(cfg.name or f"{cfg.backbone}-{Path(cfg.data).name}-kfold")
    t0 = time.time()
    per_fold = []
    for fold in range(folds):
        spec = fold_spec(base_split, folds, fold)
        run_dirs = _fold_models(cfg, ds, group, spec, fold, folds, sizes, members, reuse, log)
        per_fold.append(_fold_entry(fold, spec, run_dirs, ds, cfg.test_tta))
    summary = _summary(cfg, group, base_split, folds, members, sizes, per_fold, time.time() - t0)
    out = Path(summary_path) if summary_path else Path(cfg.runs_dir) / f"kfold-{group}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(out, summary)
    summary["summary_path"] = str(out)
    return summary
