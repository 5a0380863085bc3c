"""Training faces smoother than test faces (the shared FER2013 copy's case): the MatchSharpness route."""

from __future__ import annotations

import glob
import json
import shutil

import cv2
import numpy as np

from conftest import CKPLUS, FER2013, need, run_cli, train_cli


def _faces(n=8):
    files = sorted(glob.glob(str(need(CKPLUS) / "happy" / "*.png")))[:n]
    return np.stack([cv2.imread(f, cv2.IMREAD_GRAYSCALE) for f in files]).astype(np.float32)[..., None]


def test_match_sharpness_blurs_like_opencv_at_inference_only_and_survives_saving(tmp_path):
    from fer_core.kerasenv import keras
    from fer_core.layers import MatchSharpness
    x = _faces()
    inp = keras.Input((48, 48, 1))
    model = keras.Model(inp, MatchSharpness(1.0, name="match_sharpness")(inp))
    model.get_layer("match_sharpness").sigma.assign(3.0)      # tuned after building, as training does
    expected = np.stack([cv2.GaussianBlur(im[..., 0], (25, 25), 3.0, borderType=cv2.BORDER_REFLECT_101) for im in x])
    np.testing.assert_allclose(np.asarray(model(x, training=False))[..., 0], expected, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(model(x, training=True)), x)   # training faces pass unchanged
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert float(loaded.get_layer("match_sharpness").sigma) == 3.0
    loaded.get_layer("match_sharpness").sigma.assign(0.0)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), x, atol=1e-3)   # sigma 0 = no blur


def test_the_shared_fer2013_training_faces_are_smoother_than_its_test_faces():
    """The finding behind --match-sharpness for the default model: if the data changes, revisit it."""
    from fer_core.sharpness import estimate_sigma, mean_gradient
    root = need(FER2013)
    load = lambda pattern: np.stack([cv2.imread(f, cv2.IMREAD_GRAYSCALE)
                                     for f in sorted(glob.glob(str(root / pattern)))[:400]])
    train, test = load("train/happy/Training_*.jpg"), load("test/happy/PrivateTest_*.jpg")
    assert mean_gradient(test) > 2.5 * mean_gradient(train)
    assert 2.0 <= estimate_sigma(train, test) <= 4.0


def test_auto_match_sharpness_rescues_a_model_trained_on_blurred_faces(tmp_path):
    """Train on blurred CK+ faces, test on sharp ones of other people: the blur found is used at inference."""
    src = need(CKPLUS)
    data = tmp_path / "blurred-train"
    for cls_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        for f in sorted(cls_dir.glob("*.png")):
            subject = int(f.name[1:4])
            part = "test" if subject % 4 == 0 else "train"
            out = data / part / cls_dir.name / f.name
            out.parent.mkdir(parents=True, exist_ok=True)
            img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if part == "train":
                img = cv2.GaussianBlur(img, (0, 0), 3.0)
            cv2.imwrite(str(out), img)
    run = train_cli(data, tmp_path / "runs", "--backbone", "fer_vgg", "--epochs", "30", "--input-size", "24", "--batch-size", "16",
                    "--schedule", "cosine", "--early-stopping", "0", "--match-sharpness", "auto")
    info = json.loads((run / "run.json").read_text())
    assert 2.0 <= info["match_sharpness_sigma"] <= 4.0
    assert "sharper than the training faces" in (run / "train.log").read_text()

    from fer_core.datasets import load_dataset
    from fer_core.evaluation import to_model_input
    from fer_core.training import load_model_safe
    ds = load_dataset(str(data))
    test = ds.splits == "test"
    model = load_model_safe(run / "model.keras")
    x, y = to_model_input(ds.images[test]), ds.labels[test]
    blurred_acc = float((np.asarray(model(x, training=False)).argmax(1) == y).mean())
    model.get_layer("match_sharpness").sigma.assign(0.0)
    sharp_acc = float((np.asarray(model(x, training=False)).argmax(1) == y).mean())
    metrics = json.loads((run / "metrics.json").read_text())
    assert abs(metrics["test"]["accuracy"] - blurred_acc) < 0.02   # the stored result used the blur
    assert blurred_acc > sharp_acc + 0.05, (blurred_acc, sharp_acc)


def test_dataset_command_reports_the_sharpness_gap():
    r = run_cli("dataset", need(FER2013))
    assert r.returncode == 0, r.stderr[-1000:]
    assert "sharpness (mean pixel gradient): train" in r.stdout
    assert "--match-sharpness auto" in r.stdout


def test_bad_match_sharpness_value_is_refused_up_front(tmp_path):
    r = run_cli("train", "--data", need(CKPLUS), "--runs-dir", tmp_path, "--match-sharpness", "blurry")
    assert r.returncode != 0
    assert "--match-sharpness blurry" in r.stderr and "Traceback" not in r.stderr
