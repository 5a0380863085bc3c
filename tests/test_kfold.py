"""`python -m fer_core kfold`: every fold trained and summarised, ensembles of seeds, reuse of completed folds."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli

from fer_core.data.datasets import load_dataset
from fer_core.model.saving import load_model_safe
from fer_core.runs import store

pytestmark = pytest.mark.slow

QUICK = ["--backbone", "custom_cnn", "--input-size", "32", "--batch-size", "32", "--max-samples", "160",
         "--epochs", "1", "--folds", "2"]


def _probs(run_dir: Path) -> tuple[list[str], np.ndarray]:
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.reader(f))[1:]
    return [r[1] for r in rows], np.array([[float(v) for v in r[3:]] for r in rows])


def test_an_ensemble_kfold_scores_the_mean_of_its_members_then_a_rerun_reuses_them(ckplus, tmp_path):
    r = run_cli("kfold", "--data", ckplus, "--runs-dir", tmp_path, *QUICK, "--members", "2", "--name", "ens")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = store.read_json(tmp_path / "kfold-ens.json")
    assert summary["folds"] == 2 and summary["members"] == 2 and len(summary["per_fold"]) == 2
    assert len(store.list_runs(tmp_path)) == 4
    for entry in summary["per_fold"]:
        a, b = (Path(m) for m in entry["members"])
        split_a, split_b = (store.read_json(d / "split.json") for d in (a, b))
        assert split_a["indices"]["test"] == split_b["indices"]["test"]         # one split per fold ...
        seeds = [store.read_json(d / "run.json")["config"]["seed"] for d in (a, b)]
        assert seeds[0] != seeds[1]                                              # ... two seeds
        wa, wb = (load_model_safe(d / "model.keras").get_weights() for d in (a, b))
        assert any(not np.array_equal(x, y) for x, y in zip(wa, wb))
        (truth, pa), (_, pb) = _probs(a), _probs(b)
        classes = store.read_json(a / "metrics.json")["class_names"]
        mean = (pa + pb) / 2
        expected = float(np.mean([classes[i] == t for i, t in zip(mean.argmax(1), truth)]))
        assert entry["test_accuracy"] == expected
        assert entry["member_accuracies"] == [store.read_json(d / "metrics.json")["test"]["accuracy"]
                                              for d in (a, b)]
    assert summary["mean_accuracy"] == np.mean([f["test_accuracy"] for f in summary["per_fold"]])
    # the validation figure a recipe may be chosen by: the ensemble's own, from its members' models
    val, ds = [], load_dataset(str(ckplus), 48)
    for f in summary["per_fold"]:
        idx = store.read_json(Path(f["run"]) / "split.json")["indices"]["val"]
        x = ds.images[idx][..., None].astype("float32")
        probs = np.mean([np.asarray(load_model_safe(Path(m) / "model.keras")(x, training=False))
                         for m in f["members"]], axis=0)
        classes = store.read_json(Path(f["run"]) / "metrics.json")["class_names"]
        truth = [ds.class_names[i] for i in ds.labels[idx]]
        val.append(np.mean([classes[i] == t for i, t in zip(probs.argmax(1), truth)]))
        assert f["val_accuracy"] == pytest.approx(val[-1])
    assert summary["mean_val_accuracy"] == pytest.approx(np.mean(val))

    # the single-model k-fold of the same config is member 0 of each fold: nothing is trained again
    r = run_cli("kfold", "--data", ckplus, "--runs-dir", tmp_path, *QUICK, "--name", "single")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(store.list_runs(tmp_path)) == 4
    assert r.stdout.count("reusing the completed run") == 2
    single = store.read_json(tmp_path / "kfold-single.json")
    assert [f["run"] for f in single["per_fold"]] == [f["members"][0] for f in summary["per_fold"]]
    assert [f["test_accuracy"] for f in single["per_fold"]] == [f["member_accuracies"][0] for f in summary["per_fold"]]

    # a run without its model (like a committed reference record) is trained again
    (Path(single["per_fold"][0]["run"]) / "model.keras").unlink()
    r = run_cli("kfold", "--data", ckplus, "--runs-dir", tmp_path, *QUICK, "--name", "single")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("reusing the completed run") == 1 and len(store.list_runs(tmp_path)) == 5

    # --reuse off trains afresh
    r = run_cli("kfold", "--data", ckplus, "--runs-dir", tmp_path, *QUICK, "--reuse", "off", "--name", "fresh")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "reusing" not in r.stdout and len(store.list_runs(tmp_path)) == 7

    # a multi-scale ensemble: each fold's 32-px run is reused, a 40-px one is trained beside it
    r = run_cli("kfold", "--data", ckplus, "--runs-dir", tmp_path, *QUICK, "--input-sizes", "32,40",
                "--name", "ck-scales")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("reusing the completed run") == 2 and len(store.list_runs(tmp_path)) == 9
    scales = store.read_json(tmp_path / "kfold-ck-scales.json")
    assert scales["input_sizes"] == [32, 40]
    for entry in scales["per_fold"]:
        sizes = [store.read_json(Path(m) / "run.json")["config"]["input_size"] for m in entry["members"]]
        assert sizes == [32, 40]
        (truth, pa), (_, pb) = (_probs(Path(m)) for m in entry["members"])
        classes = store.read_json(Path(entry["run"]) / "metrics.json")["class_names"]
        assert entry["test_accuracy"] == float(np.mean([classes[i] == t for i, t in zip((pa + pb).argmax(1), truth)]))
    from fer_core.report.results import results_markdown
    row = next(line for line in results_markdown(tmp_path).splitlines() if line.startswith("| ck-scales |"))
    assert "| 32, 40 | 2 |" in row


def test_cancelling_a_fold_stops_the_kfold_with_no_summary(ckplus, tmp_path):
    """The Cancel button (or SIGTERM) on one fold's run must not leave the k-fold training the next folds."""
    args = [*QUICK[:QUICK.index("--epochs")], "--epochs", "40", "--folds", "2", "--name", "stopme"]
    proc = subprocess.Popen([sys.executable, "-m", "fer_core", "kfold", "--data", str(ckplus), "--runs-dir",
                             str(tmp_path), *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob("*-stopme-fold0-*/history.csv")):
        time.sleep(0.5)            # the first epoch is done: the fold is really training
    runs = list(tmp_path.glob("*-stopme-fold0-*"))
    assert runs, "the first fold never started"
    (runs[0] / "CANCEL").touch()   # what the Runs page's Cancel button writes
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert "fold 0 was cancelled" in err and "run the same command again" in err
    assert not (tmp_path / "kfold-stopme.json").exists()
    assert [r["status"] for r in store.list_runs(tmp_path)] == ["cancelled"]   # fold 1 never started
