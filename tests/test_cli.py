"""`python -m fer_core` as a user runs it: train a complete run, list, predict, evaluate, and clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, train_cli

from fer_core.runs import store

pytestmark = pytest.mark.slow

PHOTO = "2008_001009.jpg"      # two faces, hand-boxed in photos/training.xml


@pytest.fixture(scope="module")
def cnn_runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_runs")


@pytest.fixture(scope="module")
def cnn_run(cnn_runs, ckplus) -> Path:
    """A 2-epoch custom_cnn run on CK+48, subject-kfold:5:0; its name tries to climb out of runs/."""
    run_dir = train_cli(ckplus, cnn_runs, "--backbone", "custom_cnn", "--epochs", "2", "--split", "subject-kfold:5:0",
                        "--input-size", "32", "--name", "../../escape/cnn", timeout=600)
    assert run_dir.parent.resolve() == cnn_runs.resolve()
    return run_dir


def test_train_writes_a_complete_run(cnn_run, ckplus):
    info = store.read_json(cnn_run / "run.json")
    assert info["status"] == "completed" and info["epochs_done"] == 2
    assert info["config"]["backbone"] == "custom_cnn" and info["config"]["split"] == "subject-kfold:5:0"
    with open(cnn_run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in history] == [1, 2]
    split = store.read_json(cnn_run / "split.json")
    assert split["spec"] == "subject-kfold:5:0"
    test_idx = split["indices"]["test"]
    assert len(test_idx) == split["counts"]["test"] > 0
    metrics = store.read_json(cnn_run / "metrics.json")
    k = len(info["class_names"])
    cm = np.array(metrics["test"]["confusion_matrix"])
    assert cm.shape == (k, k) and cm.sum() == len(test_idx)
    assert metrics["test"]["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    with open(cnn_run / "predictions.csv") as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == len(test_idx)
    for row in preds:
        assert (ckplus / row["source"]).is_file()
        probs = [float(row[f"p_{c}"]) for c in info["class_names"]]
        assert sum(probs) == pytest.approx(1, abs=1e-3)
        assert row["predicted"] == info["class_names"][int(np.argmax(probs))]
    assert (cnn_run / "model.keras").is_file() and (cnn_run / "last.keras").is_file()
    leftovers = [p.name for p in cnn_run.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    assert leftovers in ([], [store.RUN_LOCK]), leftovers      # no half-written file; the empty lock file stays


def test_runs_lists_the_run(cnn_run, cnn_runs):
    r = run_cli("runs", "--runs-dir", cnn_runs, "--json", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = {x["id"]: x for x in json.loads(r.stdout)}
    assert cnn_run.name in runs
    listed = runs[cnn_run.name]
    assert listed["status"] == "completed" and listed["backbone"] == "custom_cnn" and listed["has_model"]
    assert listed["test_accuracy"] == store.read_json(cnn_run / "metrics.json")["test"]["accuracy"]


def test_a_bad_data_path_is_one_clear_line(tmp_path):
    r = run_cli("train", "--data", tmp_path / "no-such-dataset", "--epochs", "1", "--runs-dir", tmp_path / "runs",
                timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:") and "no-such-dataset" in lines[0]
    assert "Traceback" not in r.stderr + r.stdout


def test_predict_on_a_real_photo(cnn_run, photos, tmp_path):
    import cv2
    photo = photos / PHOTO
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    r = run_cli("predict", "--run", cnn_run, photo, bad, "--json", timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]          # one of the two images could not be read
    result, broken = json.loads(r.stdout)
    assert broken["faces"] == [] and "broken.jpg" in broken["error"]
    assert result["error"] is None
    faces = result["faces"]
    assert len(faces) >= 1
    h, w = cv2.imread(str(photo)).shape[:2]
    classes = store.read_json(cnn_run / "run.json")["class_names"]
    for f in faces:
        x, y, bw, bh = f["box"]
        assert 0 <= x and 0 <= y and bw > 0 and bh > 0 and x + bw <= w and y + bh <= h
        assert list(f["probabilities"]) == classes
        assert sum(f["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert f["emotion"] == max(f["probabilities"], key=f["probabilities"].get)


def test_evaluate_on_its_own_data(cnn_run, ckplus):
    r = run_cli("evaluate", cnn_run, "--data", ckplus, "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    metrics = store.read_json(cnn_run / "metrics.json")["test"]
    assert res["num_samples"] == metrics["num_samples"]
    assert res["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    assert res["classes_model_lacks"] == [] and res["samples_skipped"] == 0


def test_evaluate_a_ckplus_model_on_fer2013_reports_missing_classes(cnn_run, fer2013):
    r = run_cli("evaluate", cnn_run, "--data", fer2013, "--json", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    # CK+48 has no neutral class: those FER2013 test faces cannot be scored, and the result says so
    assert res["classes_model_lacks"] == ["neutral"]
    neutral = len(list((fer2013 / "test" / "neutral").glob("PrivateTest_*")))
    private = len(list(fer2013.glob("test/*/PrivateTest_*")))
    assert res["samples_skipped"] == neutral > 0
    assert res["num_samples"] == private - neutral


def test_kfold_with_one_fold_and_resume_of_a_completed_run_answer_in_their_own_terms(tmp_path, ckplus):
    r = run_cli("kfold", "--data", ckplus, "--folds", "1", "--runs-dir", tmp_path, timeout=300)
    assert r.returncode == 2 and "--folds 1" in r.stderr and "at least 2 folds" in r.stderr
    assert "subject-kfold:1:0" not in r.stderr and "Traceback" not in r.stderr
    done = tmp_path / "done"
    done.mkdir()
    store.write_json_atomic(done / "run.json", {"name": "done", "status": "completed", "epochs_done": 3,
                                                   "config": {"data": str(ckplus), "backbone": "fer_vgg"}})
    r = run_cli("resume", done, timeout=300)
    assert r.returncode != 0 and "already completed" in r.stderr and "nothing to resume" in r.stderr
    assert store.read_json(done / "run.json")["status"] == "completed"            # left as it was
