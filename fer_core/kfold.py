"""K-fold cross-validation: train every fold of a subject-kfold (or random) split, then summarise."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from . import runstore
from .config import TrainConfig
from .datasets import load_dataset


def fold_spec(base: str, k: int, fold: int) -> str:
    """'subject-kfold' -> subject-kfold:K:FOLD; 'random:0.1' -> random:0.1 with a per-fold seed."""
    if base.startswith("random"):
        return base if ":" in base else "random:0.1"
    return f"subject-kfold:{k}:{fold}"


def run_kfold(cfg: TrainConfig, folds: int = 10, summary_path: str | None = None) -> dict:
    """Train `folds` runs (one per fold) and write a summary json with mean, std and per-fold figures."""
    from .training import train
    ds = load_dataset(cfg.data, cfg.image_size)          # loaded once, shared by every fold
    base_split = cfg.split if cfg.split not in ("auto", "official") else "subject-kfold"
    group = runstore.safe_slug(cfg.name or f"{cfg.backbone}-{Path(cfg.data).name}-kfold")
    per_fold = []
    t0 = time.time()
    for fold in range(folds):
        spec = fold_spec(base_split, folds, fold)
        seed = cfg.seed + fold if spec.startswith("random") else cfg.seed
        fcfg = dataclasses.replace(cfg, split=spec, seed=seed, name=f"{group}-fold{fold}")
        run_dir = train(fcfg, dataset=ds)
        m = runstore.read_json(Path(run_dir) / "metrics.json", {}) or {}
        runstore.update_run(run_dir, kfold={"group": group, "fold": fold, "folds": folds})
        per_fold.append({"fold": fold, "run": str(run_dir), "split": spec,
                         "test_accuracy": m.get("test", {}).get("accuracy"),
                         "macro_f1": m.get("test", {}).get("macro_f1"),
                         "train_accuracy": m.get("train", {}).get("accuracy"),
                         "test_samples": m.get("test", {}).get("num_samples")})
    accs = np.array([f["test_accuracy"] for f in per_fold], dtype=float)
    f1s = np.array([f["macro_f1"] for f in per_fold], dtype=float)
    summary = {
        "group": group, "data": cfg.data, "backbone": cfg.backbone, "weights": cfg.weights,
        "split": base_split, "folds": folds, "config": cfg.to_dict(),
        "mean_accuracy": float(accs.mean()), "std_accuracy": float(accs.std(ddof=1)) if folds > 1 else 0.0,
        "min_accuracy": float(accs.min()), "max_accuracy": float(accs.max()),
        "mean_macro_f1": float(f1s.mean()), "std_macro_f1": float(f1s.std(ddof=1)) if folds > 1 else 0.0,
        "seconds": round(time.time() - t0, 1), "per_fold": per_fold, "created": runstore.now_iso(),
    }
    out = Path(summary_path) if summary_path else Path(cfg.runs_dir) / f"kfold-{group}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    runstore.write_json_atomic(out, summary)
    summary["summary_path"] = str(out)
    return summary
