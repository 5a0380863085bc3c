"""Re-evaluate a stored run's model, on its own test split or on another dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_core.data.datasets import DatasetError, load_dataset
from fer_core.data.emotions import canonical
from fer_core.data.splits import make_split
from fer_core.model.temperature import apply_temperature
from fer_core.report.calibration import calibration_figures
from fer_core.report.evaluation import classification_metrics, evaluate_arrays, match_labels, tta_mode
from fer_core.runs import store
from fer_core.runs.run_model import RunModel


def load_run_data(run_dir, info: dict, data: str | None = None):
    """(dataset, same_data): the run's own dataset read as training read it (its FER+ label mode, so the
    indices in split.json point at the same faces), or another dataset with majority labels."""
    cfg = info.get("config", {}) or {}
    data_path = data or cfg.get("data")
    if not data_path:
        raise DatasetError(f"{run_dir}: the run does not record its dataset; give the dataset's path.")
    same_data = data is None or Path(data).resolve() == Path(cfg.get("data", "") or ".").resolve()
    mode = cfg.get("label_mode", "majority") if same_data else "majority"
    return load_dataset(data_path, cfg.get("image_size", 48), label_mode=mode), same_data


def part_indices(run_dir, info: dict, ds, part: str, same_data: bool) -> tuple[np.ndarray, str]:
    """Which faces are a run's `part` (train/val/test/all), decided here only (evaluate and export ask this):
    the run's own split.json on its own data; else the dataset's official split; else the run's split spec."""
    if part == "all":
        return np.arange(len(ds)), "every face"
    if part not in ("train", "val", "test"):
        raise DatasetError(f"unknown split '{part}'; use train, val, test or all")
    recorded = store.read_json(store.split_path(run_dir), {}) or {}
    if same_data and (recorded.get("indices") or {}).get(part) is not None:
        return np.array(recorded["indices"][part], dtype=np.int64), f"the run's own {part} part"
    if ds.splits is not None:
        return np.flatnonzero(ds.splits == part), f"the dataset's official {part} part"
    cfg = info.get("config", {}) or {}
    seed = cfg.get("split_seed", -1) if cfg.get("split_seed", -1) >= 0 else cfg.get("seed", 1337)
    try:
        s = make_split(ds, (info.get("split", {}) or {}).get("spec", "auto"), seed)
    except DatasetError:
        s = make_split(ds, "auto", seed)
    return getattr(s, part), f"the {part} part of the run's split rule"


def evaluate_run(run_dir, data: str | None = None, split: str = "test", tta: bool | str = "off",
                 save: bool = False, classes: list[str] | None = None, engine: str = "keras") -> dict:
    """Accuracy and per-class figures of a run's model on a part of a dataset, scored by emotion name on the
    classes the model knows; `classes` (emotion names) limits scoring to those, so that models with different
    class sets can be compared on the faces they both know. 'calibration' holds ECE and NLL of the model's own
    probabilities and, where the run has a fitted temperature, of the scaled ones the app shows; engine
    'litert' scores the run's model.tflite, which the app runs where the export is marked for it."""
    run_dir = Path(run_dir)
    info = store.read_json(store.run_json_path(run_dir), None)
    if info is None:
        raise store.RunStoreError(f"{run_dir} is not a run folder (no readable run.json)")
    rec = RunModel.load(run_dir, engine)
    ds, same_data = load_run_data(run_dir, info, data)
    idx, _ = part_indices(run_dir, info, ds, split, same_data)
    keep, y, mapping, missing = scored_faces(rec.class_names, ds, idx, classes)
    m, probs = evaluate_arrays(rec.predict_fn, ds.images[keep], y, rec.class_names, tta=tta)
    result = {"run": str(run_dir), "data": str(data or info.get("config", {}).get("data")), "split": split, **m,
              "classes_model_lacks": missing, "samples_skipped": int(len(idx) - len(keep)),
              "classes_scored": [ds.class_names[j] for j in sorted(mapping)],
              "calibration": calibration_figures(probs, y, rec.temperature, rec.class_shift), "engine": engine,
              "as_shown": _as_shown(probs, y, rec), "evaluated": store.now_iso()}
    if save:
        out = run_dir / "evaluations"
        out.mkdir(exist_ok=True)
        name = f"{Path(result['data']).name}-{split}{_tta_suffix(tta)}{'-litert' if engine == 'litert' else ''}.json"
        store.write_json_atomic(out / store.safe_slug(name), result)
    return result


def _as_shown(probs: np.ndarray, y: np.ndarray, rec: RunModel) -> dict | None:
    """Accuracy, macro F1 and per-class figures of the answers the app gives: the run's calibration applied (a
    logit adjustment changes which emotion wins; a temperature alone does not). None without a calibration."""
    if rec.class_shift is None:
        return None
    m = classification_metrics(y, apply_temperature(probs, rec.temperature, rec.class_shift), rec.class_names)
    return {k: m[k] for k in ("accuracy", "macro_f1", "per_class", "confusion_matrix") if k in m}


def scored_faces(model_classes: list[str], ds, idx: np.ndarray, classes: list[str] | None = None):
    """(rows of idx whose label the model knows, their labels as model class indices, data->model class map,
    the data's classes the model lacks); `classes` (emotion names) narrows the scored classes further."""
    mapping, missing = match_labels(model_classes, ds.class_names)
    if classes:
        wanted = {canonical(c) for c in classes}
        mapping = {j: m for j, m in mapping.items() if canonical(ds.class_names[j]) in wanted}
    keep = np.array([i for i in idx if int(ds.labels[i]) in mapping], dtype=np.int64)
    y = np.array([mapping[int(ds.labels[i])] for i in keep], dtype=np.int64)
    return keep, y, mapping, missing


def _tta_suffix(tta) -> str:
    """'' without TTA, '-tta' for crops (the name older saved evaluations have), '-tta-flip' for flip."""
    return {"off": "", "crops": "-tta", "flip": "-tta-flip"}[tta_mode(tta)]
