"""Re-evaluate a stored run's model, on its own test split or on another dataset."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fer_core.data.datasets import DatasetError, load_dataset
from fer_core.data.splits import make_split
from fer_core.report.evaluation import evaluate_arrays, match_labels, tta_mode
from fer_core.runs import store as runstore


def evaluate_run(run_dir, data: str | None = None, split: str = "test", tta: bool | str = "off", save: bool = False) -> dict:
    from fer_core.serve.recognizer import EmotionRecognizer
    run_dir = Path(run_dir)
    info = runstore.read_json(runstore.run_json_path(run_dir), None)
    if info is None:
        raise runstore.RunStoreError(f"{run_dir} is not a run folder (no readable run.json)")
    cfg = info.get("config", {})
    rec = EmotionRecognizer.from_run(run_dir, prefer_tflite=False)
    data_path = data or cfg.get("data")
    ds = load_dataset(data_path, cfg.get("image_size", 48))
    same_data = data is None or Path(data).resolve() == Path(cfg.get("data", "")).resolve()
    if split == "all":
        idx = np.arange(len(ds))
    else:
        if split not in ("train", "val", "test"):
            raise DatasetError(f"unknown split '{split}'; use train, val, test or all")
        if same_data and runstore.split_path(run_dir).exists():
            sj = runstore.read_json(runstore.split_path(run_dir), {}) or {}
            idx = np.array(sj.get("indices", {}).get(split, []), dtype=np.int64)
        else:
            spec = "official" if ds.splits is not None else (info.get("split", {}) or {}).get("spec", "auto")
            seed = cfg.get("split_seed", -1) if cfg.get("split_seed", -1) >= 0 else cfg.get("seed", 1337)
            try:
                s = make_split(ds, spec, seed)
            except DatasetError:
                s = make_split(ds, "auto", seed)
            idx = getattr(s, split)
    mapping, missing = match_labels(rec.class_names, ds.class_names)
    keep = np.array([i for i in idx if int(ds.labels[i]) in mapping], dtype=np.int64)
    y = np.array([mapping[int(ds.labels[i])] for i in keep], dtype=np.int64)
    t0 = time.time()
    m, _ = evaluate_arrays(rec.predict_fn, ds.images[keep], y, rec.class_names, tta=tta)
    result = {"run": str(run_dir), "data": str(data_path), "split": split, **m,
              "classes_model_lacks": missing, "samples_skipped": int(len(idx) - len(keep)),
              "evaluated": runstore.now_iso()}
    if save:
        out = run_dir / "evaluations"
        out.mkdir(exist_ok=True)
        name = f"{Path(str(data_path)).name}-{split}{_tta_suffix(tta)}.json"
        runstore.write_json_atomic(out / runstore.safe_slug(name), result)
    return result


def _tta_suffix(tta) -> str:
    """'' without TTA, '-tta' for crops (the name older saved evaluations have), '-tta-flip' for flip."""
    return {"off": "", "crops": "-tta", "flip": "-tta-flip"}[tta_mode(tta)]
