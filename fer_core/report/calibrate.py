"""Fit a run's calibration on its validation part and store it (calibration.json): a logit adjustment that weighs
up the emotions training saw rarely, then a temperature; and read back what the Runs page shows: the reliability
of the run's test answers before and after them.

The adjustment's tau is chosen by a rule on validation figures only: the best validation macro F1 among the
taus whose validation accuracy stays within a point of the unadjusted model's (0 when none beats it). It lifts
disgust and fear, which a model trained on FER2013's proportions learns to answer rarely, at little cost to
accuracy; the temperature is then fitted on the adjusted answers.

Only the validation part is used for fitting: the test part stays an honest check of the fitted T, and the
run's predictions.csv (its test part, written by training) lets the page draw that check with no model call.
T is fitted on the Keras model's float probabilities, never on an int8 LiteRT export's: those are rounded to
steps of 1/256, so a true class often gets exactly 0 and NLL, dominated by those zeros, would ask for a far too
high temperature. The same T is then applied to either engine's output.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fer_core.data.datasets import DatasetError
from fer_core.model.temperature import apply_temperature, prior_shift
from fer_core.report.calibration import ECE_BINS, calibration_figures, fit_temperature, reliability_bins
from fer_core.report.evaluate import load_run_data, part_indices, scored_faces
from fer_core.runs.run_model import RunModel
from fer_core.report.evaluation import classification_metrics, predict_probs, to_model_input
from fer_core.runs import store


TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_ACCURACY_DROP = 0.01      # validation accuracy a tau may cost, at most


def choose_tau(probs: np.ndarray, y: np.ndarray, prior: np.ndarray, class_names: list[str]) -> tuple[float, list]:
    """(tau, the validation figures of every tau tried), by the module's rule."""
    grid = []
    for tau in TAUS:
        m = classification_metrics(y, apply_temperature(probs, None, prior_shift(prior, tau)), class_names)
        grid.append({"tau": tau, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]})
    floor = grid[0]["accuracy"] - MAX_ACCURACY_DROP
    best = max((g for g in grid if g["accuracy"] >= floor), key=lambda g: (g["macro_f1"], -g["tau"]))
    return best["tau"], grid


def training_prior(run_dir, info: dict, ds, same_data: bool, class_names: list[str]) -> np.ndarray:
    """Each class's share of the run's training faces (a class with none counts as one face)."""
    idx, _ = part_indices(run_dir, info, ds, "train", same_data)
    _, y, _, _ = scored_faces(class_names, ds, idx)
    counts = np.maximum(np.bincount(y, minlength=len(class_names)), 1)
    return counts / counts.sum()


def calibrate_run(run_dir, data: str | None = None, adjust: bool = True) -> dict:
    """Fit the logit adjustment (unless adjust is False) and T on the run's validation part (its own split.json
    on its own dataset; `data` names the dataset when the recorded path is not reachable here) and write them to
    the run's calibration.json."""
    run_dir = Path(run_dir)
    info = store.read_json(store.run_json_path(run_dir), None)
    if info is None:
        raise store.RunStoreError(f"{run_dir} is not a run folder (no readable run.json)")
    rec = RunModel.load(run_dir)
    ds, same_data = load_run_data(run_dir, info, data)
    idx, where = part_indices(run_dir, info, ds, "val", same_data)
    keep, y, _, _ = scored_faces(rec.class_names, ds, idx)
    if len(keep) < 2 * len(rec.class_names):
        raise DatasetError(f"{run_dir}: only {len(keep)} validation faces with classes the model knows; a "
                           "temperature needs a validation part (give --data with the run's dataset).")
    probs = predict_probs(rec.predict_fn, to_model_input(ds.images[keep]))
    prior = training_prior(run_dir, info, ds, same_data, rec.class_names)
    tau, grid = choose_tau(probs, y, prior, rec.class_names) if adjust else (0.0, [])
    shift = prior_shift(prior, tau)
    t = fit_temperature(apply_temperature(probs, None, shift), y)
    figures = calibration_figures(probs, y, t, shift)
    record = {"method": "logit adjustment, then temperature scaling: softmax((log(p) + shift) / T)",
              "temperature": round(t, 5),
              "logit_adjustment": {"tau": tau, "prior": [round(float(v), 6) for v in prior],
                                   "shift": None if shift is None else [round(float(v), 6) for v in shift],
                                   "rule": f"best validation macro F1 within {MAX_ACCURACY_DROP:.0%} of the "
                                           "unadjusted validation accuracy" if adjust else "off", "grid": grid},
              "fitted_on": {"data": str(data or info.get("config", {}).get("data")), "part": "val",
                            "which": where, "num_faces": int(len(y))},
              "ece_bins": ECE_BINS, "before": figures["before"], "after": figures["after"],
              "fitted": store.now_iso()}
    store.write_json_atomic(store.calibration_path(run_dir), record)
    return {**record, "path": str(store.calibration_path(run_dir))}


def read_test_predictions(run_dir) -> tuple[np.ndarray, np.ndarray] | None:
    """(probabilities, true class indices) of the run's test part from predictions.csv; None when it is
    missing or its rows cannot be read as probabilities."""
    try:
        with open(store.predictions_path(run_dir), newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError:
        return None
    if len(rows) < 2:
        return None
    classes = [c[2:] for c in rows[0][3:]]
    try:
        probs = np.array([[float(v) for v in r[3:]] for r in rows[1:]], np.float64)
        y = np.array([classes.index(r[1]) for r in rows[1:]], np.int64)
    except (ValueError, IndexError):
        return None
    return (probs, y) if probs.ndim == 2 and probs.shape[1] == len(classes) else None


def run_reliability(run_dir) -> dict:
    """What the Runs page shows: the stored calibration (None if never fitted), and the test part's ECE and
    reliability bins before and after its temperature ('test' None when predictions.csv is unusable)."""
    record = store.read_json(store.calibration_path(run_dir), None)
    t, shift = store.read_temperature(run_dir), store.read_class_shift(run_dir)
    test = read_test_predictions(run_dir)
    out = {"calibration": record if t else None, "temperature": t, "test": None}
    if test is not None:
        probs, y = test
        shift = shift if shift and len(shift) == probs.shape[1] else None
        out["test"] = {**calibration_figures(probs, y, t, shift), "bins_before": reliability_bins(probs, y),
                       "bins_after": reliability_bins(apply_temperature(probs, t, shift), y) if t else None}
    return out
