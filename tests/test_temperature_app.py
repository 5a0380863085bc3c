"""Calibrated probabilities end to end: `calibrate` on a real run, the recognizer (Keras and LiteRT) and the CLI
showing the scaled probabilities only when the run has a calibration.json, `evaluate --json`, the Runs page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import run_cli
from fer_core.data.datasets import load_dataset
from fer_core.data.images import read_image_file, to_gray
from fer_core.model.temperature import apply_temperature
from fer_core.report.calibrate import read_test_predictions
from fer_core.report.calibration import nll, reliability_bins
from fer_core.runs import store
from fer_core.serve.recognizer import EmotionRecognizer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
PHOTO = "2008_001009.jpg"        # several real faces


def copy_run(src: Path, dst: Path, keep_model: bool = True) -> Path:
    """A copy of a real run with no calibration.json, so each test decides whether it has one."""
    skip = ["calibration.json"] + ([] if keep_model else ["model.keras", "last.keras", "model.tflite"])
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*skip))
    return dst


@pytest.fixture(scope="module")
def calibrated(tiny_run, tmp_path_factory):
    """(a copy of the tiny CK+ run, the output of `python -m fer_core calibrate` on it)."""
    run = copy_run(tiny_run, tmp_path_factory.mktemp("cal") / tiny_run.name)
    return run, run_cli("calibrate", run, timeout=600)


def test_calibrate_fits_on_the_validation_part_and_lowers_its_nll(calibrated, ckplus):
    run, r = calibrated
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == str(store.calibration_path(run))
    assert "temperature" in r.stdout and "validation NLL" in r.stdout and "logit adjustment tau" in r.stdout
    cal = store.read_json(store.calibration_path(run))
    val = store.read_json(store.split_path(run))["indices"]["val"]
    assert cal["fitted_on"]["num_faces"] == len(val) and cal["fitted_on"]["part"] == "val"
    assert cal["after"]["nll"] < cal["before"]["nll"] and cal["temperature"] != 1.0

    # the same validation faces through the app's recognizer: its probabilities are the calibrated ones
    ds = load_dataset(ckplus)
    faces, y = ds.images[val].astype(np.float32)[..., None], ds.labels[val]
    rec = EmotionRecognizer.from_run(run)
    assert rec.temperature == pytest.approx(cal["temperature"])
    assert nll(rec.predict_fn(faces), y) == pytest.approx(cal["before"]["nll"], abs=1e-4)
    assert nll(rec.classify(faces), y) == pytest.approx(cal["after"]["nll"], abs=1e-4)


def test_evaluate_json_gives_ece_before_and_after(calibrated):
    run, _ = calibrated
    cal = store.read_json(store.calibration_path(run))
    r = run_cli("evaluate", run, "--split", "val", "--json", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    figures = json.loads(r.stdout)["calibration"]
    assert figures["temperature"] == pytest.approx(cal["temperature"]) and figures["bins"] == 15
    for when in ("before", "after"):
        assert figures[when]["ece"] == pytest.approx(cal[when]["ece"], abs=1e-4)
        assert figures[when]["nll"] == pytest.approx(cal[when]["nll"], abs=1e-4)

    bad = run_cli("calibrate", run.parent / "no-such-run", timeout=300)
    last = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode == 2 and last.startswith("error:") and "not a run folder" in last
    assert "Traceback" not in bad.stderr
    no_export = run_cli("evaluate", run, "--engine", "litert", timeout=300)   # the LiteRT path needs model.tflite
    assert no_export.returncode == 2 and "python -m fer_core export" in no_export.stderr.strip().splitlines()[-1]


def _face_probs(rec: EmotionRecognizer, image) -> tuple[list[str], np.ndarray]:
    faces = rec.analyze(image)
    return [f.emotion for f in faces], np.array([[f.probabilities[c] for c in rec.class_names] for f in faces])


def test_shown_probabilities_change_with_a_calibration_file_and_only_then(default_run, photos, tmp_path):
    run = copy_run(default_run, tmp_path / "default")
    image = read_image_file(photos / PHOTO)
    before = {}
    for tflite in (True, False):                      # the app's LiteRT fast path, and Keras
        rec = EmotionRecognizer.from_run(run, prefer_tflite=tflite)
        emotions, probs = _face_probs(rec, image)
        assert rec.temperature is None and len(emotions) >= 2
        faces = rec.model_inputs(to_gray(image), rec.find_faces(image))
        np.testing.assert_array_equal(rec.classify(faces), rec.predict_fn(faces))     # no file: as before
        before[rec.engine] = (emotions, probs, faces)
    plain = run_cli("predict", "--run", run, photos / PHOTO, "--json", timeout=300)

    store.write_json_atomic(store.calibration_path(run), {"temperature": 2.0})
    for tflite in (True, False):
        rec = EmotionRecognizer.from_run(run, prefer_tflite=tflite)
        emotions, probs = _face_probs(rec, image)
        old_emotions, old_probs, faces = before[rec.engine]
        assert emotions == old_emotions                                 # the same answers, less sure of them
        assert (probs.max(1) < old_probs.max(1)).all()
        np.testing.assert_allclose(probs, apply_temperature(old_probs, 2.0), atol=1e-5)
        np.testing.assert_allclose(rec.classify(faces), apply_temperature(rec.predict_fn(faces), 2.0), atol=1e-6)
    assert set(before) == {"litert", "keras"}
    shift = [5.0 if c == "disgust" else 0.0 for c in rec.class_names]       # a logit adjustment changes answers
    store.write_json_atomic(store.calibration_path(run), {"temperature": 2.0,
                                                                "logit_adjustment": {"tau": 1, "shift": shift}})
    adjusted = EmotionRecognizer.from_run(run, prefer_tflite=False)
    _, old_probs, faces = before["keras"]
    np.testing.assert_allclose(adjusted.classify(faces), apply_temperature(adjusted.predict_fn(faces), 2.0, shift),
                               atol=1e-6)
    d = adjusted.class_names.index("disgust")
    assert (_face_probs(adjusted, image)[1][:, d] > 5 * apply_temperature(old_probs, 2.0)[:, d]).all()   # e^(5/2)
    store.write_json_atomic(store.calibration_path(run), {"temperature": 2.0})
    scaled = run_cli("predict", "--run", run, photos / PHOTO, "--json", timeout=300)
    assert plain.returncode == 0 and scaled.returncode == 0, scaled.stderr[-2000:]
    conf = lambda r: [f["confidence"] for f in json.loads(r.stdout)[0]["faces"]]   # noqa: E731
    assert len(conf(plain)) == len(conf(scaled)) >= 2
    assert all(s < p for s, p in zip(conf(scaled), conf(plain)))


def test_runs_page_shows_the_reliability_diagram_and_ece(default_run, tmp_path, monkeypatch):
    runs_root = tmp_path / "runs"
    calibrated = copy_run(default_run, runs_root / "calibrated", keep_model=False)
    shutil.copy(store.calibration_path(default_run), store.calibration_path(calibrated))
    plain = copy_run(default_run, runs_root / "plain", keep_model=False)
    store.rename_run(plain, "plain copy")
    monkeypatch.setenv("FER_RUNS_DIR", str(runs_root))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    at.selectbox(key="run_pick").set_value("calibrated").run()
    at.session_state["run_tab"] = "Calibration"        # only the open tab's section runs
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    t, shift = store.read_temperature(calibrated), store.read_class_shift(calibrated)
    probs, y = read_test_predictions(calibrated)
    chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if any(d.get("name") == "share right" for d in json.loads(c.proto.spec)["data"]))
    bars = [d["y"] for d in chart["data"] if d.get("name") == "share right"]
    expected = [[b["accuracy"] for b in bins if b["count"]]
                for bins in (reliability_bins(probs, y), reliability_bins(apply_temperature(probs, t, shift), y))]
    assert len(bars) == 2 and np.allclose(bars[0], expected[0]) and np.allclose(bars[1], expected[1])
    shown = "\n".join(str(e.value) for e in at.markdown)
    assert f"{t:.3f}" in shown
    table = next(d.value for d in at.dataframe if "ECE after" in d.value.columns)
    assert list(table["part"].str.split().str[0]) == ["validation", "test"]

    at.selectbox(key="run_pick").set_value("plain").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No temperature fitted" in str(i.value) for i in at.info)
