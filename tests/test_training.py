"""The training loop: frozen-feature cache, pre-trained heads, interrupt + resume, cancel, tf.distribute."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import re
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli

from fer_core.config import TrainConfig
from fer_core.model.backbones import build_features, build_model, freeze_base
from fer_core.model.kerasenv import keras
from fer_core.model.saving import load_model_safe
from fer_core.runs import store
from fer_core.train.frozen import compute_features, fit_head_on_features, head_phase_model
from fer_core.train.loop import train
from fer_core.train.schedule import compile_model

pytestmark = pytest.mark.slow

K = 4
# a quick CK+ run: small input, a capped training part, fast epochs
QUICK = ["--backbone", "custom_cnn", "--input-size", "32", "--batch-size", "32", "--max-samples", "160",
         "--split", "subject-kfold:5:0"]


def _history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def _wait_for(predicate, timeout: float, proc=None, what=""):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _epochs_done(run_dir: Path) -> int:
    return (store.read_json(run_dir / "state.json", {}) or {}).get("epochs_done", 0)


def _start_train(run_dir: Path, data: Path, *args) -> subprocess.Popen:
    log = open(run_dir.parent / f"{run_dir.name}.out", "w")
    return subprocess.Popen([sys.executable, "-m", "fer_core", "train", "--data", str(data), *QUICK,
                             "--run-dir", str(run_dir), *map(str, args)], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


# ---------------------------------------------------------------- the frozen-feature cache
@pytest.mark.parametrize("name", ["custom_cnn"])   # dropout inside the base: it must be off while frozen
def test_feature_cache_gives_the_same_head_as_the_plain_path(name):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (48, 48, 48, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, K, 48), K).astype("float32")
    xv, yv = x[:8], y[:8]
    cfg = TrainConfig(dropout=0.0, learning_rate=1e-3)

    def frozen_model():
        model, features, head = build_model(name, K, image_size=48, input_size=32, weights="none", head_units=32,
                                            dropout=0.0, l2=1e-4, augment=False, seed=7)
        freeze_base(features)
        return model, features, head

    # plain path: the whole model is fitted, its base frozen
    model, features, head = frozen_model()
    head_init = [w.copy() for w in head.get_weights()]
    base_init = [w.copy() for w in features.get_weights()]
    fit_model = head_phase_model(model)
    keras.utils.set_random_seed(3)
    compile_model(fit_model, cfg, cfg.learning_rate)
    fit_model.fit(x, y, validation_data=(xv, yv), epochs=2, batch_size=8, shuffle=False, verbose=0)
    plain = head.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(features.get_weights(), base_init)), "the frozen base moved"

    # cached path: base features computed once, the head fitted on them
    model2, features2, head2 = frozen_model()
    assert all(np.array_equal(a, b) for a, b in zip(head2.get_weights(), head_init))
    keras.utils.set_random_seed(3)
    f_tr = compute_features(features2, x, lambda s: None, "train")
    f_va = compute_features(features2, xv, lambda s: None, "val")
    compile_model(head2, cfg, cfg.learning_rate)
    fit_head_on_features(head2, f_tr, y, f_va, yv, 2, 8, [], None, shuffle=False)
    cached = head2.get_weights()

    assert any(np.abs(a - b).max() > 1e-3 for a, b in zip(plain, head_init)), "the head did not train"
    for a, b in zip(plain, cached):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def _tiny_folder(root: Path, n=16) -> Path:
    import cv2
    rng = np.random.default_rng(1)
    for c in ("happy", "sad", "angry"):
        (root / c).mkdir(parents=True)
        for j in range(n):
            cv2.imwrite(str(root / c / f"{j}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root


def test_pretrained_head_phase_keeps_the_base_frozen(tmp_path):
    """--weights PATH with augmentation: the head trains on the full model, its base frozen (no cache)."""
    augment, cache = True, True
    features = build_features("custom_cnn", 48, 32, None)
    weights = tmp_path / "base.weights.h5"
    features.save_weights(weights)
    cfg = TrainConfig(data=str(_tiny_folder(tmp_path / "data")), backbone="custom_cnn", weights=str(weights),
                      input_size=32, epochs=2, batch_size=16, augment=augment, feature_cache=cache,
                      runs_dir=str(tmp_path / "runs"), name="head")
    run_dir = train(cfg)
    info = store.read_json(run_dir / "run.json")
    assert info["status"] == "completed"
    assert [r["phase"] for r in _history(run_dir)] == ["head", "head"]
    saved = load_model_safe(run_dir / "model.keras").get_layer("features").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, features.get_weights()))
    log = (run_dir / "train.log").read_text()
    assert ("caching the base's features" in log) == (cache and not augment)


# ---------------------------------------------------------------- interrupt, resume, cancel
def _signal_after_first_epoch(run_dir, ckplus, epochs: int, sig, wait: float) -> int:
    """Start a CLI training, send `sig` once its first epoch is checkpointed; the process's exit code."""
    run_dir.mkdir(parents=True)
    proc = _start_train(run_dir, ckplus, "--epochs", str(epochs))
    try:
        _wait_for(lambda: _epochs_done(run_dir) >= 1 and (run_dir / "last.keras").exists(), 300, proc,
                  "the first epoch's checkpoint")
        proc.send_signal(sig)
        return proc.wait(wait)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.timeout(600)
def test_a_killed_run_resumes_to_completion(ckplus, tmp_path):
    run_dir = tmp_path / "runs" / "killed"
    rc = _signal_after_first_epoch(run_dir, ckplus, 6, signal.SIGKILL, 30)
    assert rc == -signal.SIGKILL
    before = _history(run_dir)
    done = _epochs_done(run_dir)
    assert 1 <= done < 6 and len(before) >= done
    assert store.read_json(run_dir / "run.json")["status"] == "running"   # as the killed process left it
    # a kill can land between an atomic write's temp file and its rename: the temp file stays, the target is whole
    (run_dir / ".run.json.k1ll3d.tmp").write_text('{"half": ')

    r = run_cli("resume", run_dir, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [p.name for p in run_dir.iterdir() if ".tmp" in p.name] == []       # resume cleared them
    info = store.read_json(run_dir / "run.json")
    assert info["status"] == "completed" and info["epochs_done"] == 6
    after = _history(run_dir)
    assert [int(row["epoch"]) for row in after] == [1, 2, 3, 4, 5, 6]
    assert after[:done] == before[:done], "the epochs before the kill are kept, not redone"
    assert f"resuming after epoch {done}" in (run_dir / "train.log").read_text()
    metrics = store.read_json(run_dir / "metrics.json")
    assert metrics["test"]["num_samples"] > 0 and (run_dir / "predictions.csv").exists()


@pytest.mark.timeout(600)
def test_sigterm_cancels_and_keeps_the_checkpoint(ckplus, tmp_path):
    run_dir = tmp_path / "runs" / "termed"
    rc = _signal_after_first_epoch(run_dir, ckplus, 40, signal.SIGTERM, 120)
    assert rc not in (0, -signal.SIGTERM), "a cancelled run is neither a success nor killed by the signal"
    info = store.read_json(run_dir / "run.json")
    assert info["status"] == "cancelled"
    done = info["epochs_done"]
    assert 1 <= done < 40 and len(_history(run_dir)) == done
    for name in ("last.keras", "model.keras"):
        assert load_model_safe(run_dir / name).output_shape[-1] == 7
    assert "SIGTERM" in (run_dir / "train.log").read_text()
    assert not (run_dir / "metrics.json").exists()


def test_a_cancel_file_stops_the_run(tmp_path):
    cfg = TrainConfig(data=str(_tiny_folder(tmp_path / "data", n=40)), backbone="custom_cnn", input_size=32,
                      epochs=200, batch_size=8, augment=False, runs_dir=str(tmp_path / "runs"), name="c")
    run_dir = store.create_run_dir(cfg.runs_dir, "c")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("dir", train(cfg, run_dir=run_dir)))
    t.start()
    _wait_for(lambda: _epochs_done(run_dir) >= 1 or not t.is_alive(), 180, what="the first epoch")
    (run_dir / "CANCEL").touch()
    t.join(120)
    assert not t.is_alive()
    info = store.read_json(run_dir / "run.json")
    assert info["status"] == "cancelled" and 1 <= info["epochs_done"] < 200
    assert (run_dir / "last.keras").exists()


# ---------------------------------------------------------------- tf.distribute
MIRRORED = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from fer_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.timeout(600)
def test_mirrored_strategy_trains_on_two_replicas(ckplus, tmp_path):
    run_dir = tmp_path / "runs" / "mirrored"
    r = subprocess.run([sys.executable, "-c", MIRRORED, "train", "--data", str(ckplus), *QUICK, "--epochs", "1",
                        "--strategy", "mirrored", "--run-dir", str(run_dir)], cwd=REPO, capture_output=True,
                       text=True, timeout=500)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "tf.distribute mirrored: 2 replicas" in r.stdout
    info = store.read_json(run_dir / "run.json")
    assert info["status"] == "completed" and info["config"]["strategy"] == "mirrored"
    assert len(_history(run_dir)) == 1 and (run_dir / "metrics.json").exists()


# ---------------------------------------------------------------- a full disk while checkpointing
def test_a_full_disk_while_checkpointing_fails_the_run_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """The second epoch's checkpoint write half-writes and hits ENOSPC; epoch 1's checkpoint must survive."""
    import errno
    cfg = TrainConfig(data=str(_tiny_folder(tmp_path / "data", n=40)), backbone="custom_cnn", input_size=32,
                      epochs=5, batch_size=8, runs_dir=str(tmp_path / "runs"), name="disk")
    run_dir = store.create_run_dir(cfg.runs_dir, "disk")
    real_save = keras.Model.save
    calls = {"last": 0}

    def save_then_fill_disk(self, filepath, *a, **kw):
        if "last" in str(filepath):
            calls["last"] += 1
            if calls["last"] == 2:
                Path(filepath).write_bytes(b"PK\x03\x04 half a zip")   # what a full disk leaves behind
                raise OSError(errno.ENOSPC, "No space left on device", str(filepath))
        return real_save(self, filepath, *a, **kw)

    monkeypatch.setattr(keras.Model, "save", save_then_fill_disk)
    with pytest.raises(OSError):
        train(cfg, run_dir=run_dir)
    monkeypatch.setattr(keras.Model, "save", real_save)

    info = store.read_json(run_dir / "run.json")
    assert info["status"] == "failed"
    assert "disk is full" in info["error"] and "previous checkpoint is kept" in info["error"]
    assert not list(run_dir.glob(".*tmp*")), "the half-written file was left behind"
    assert _epochs_done(run_dir) == 1
    from fer_core.model.saving import load_model_safe
    load_model_safe(run_dir / "last.keras")       # epoch 1's checkpoint is whole
    assert store.read_run(run_dir)["status"] == "failed"   # and the run still lists

    r = run_cli("resume", run_dir)                  # space freed: the run finishes from epoch 1
    assert r.returncode == 0, r.stderr[-2000:]
    assert store.read_json(run_dir / "run.json")["status"] == "completed"
    assert [int(h["epoch"]) for h in _history(run_dir)] == [1, 2, 3, 4, 5]


def test_budgeted_cosine_anneals_by_the_clock_within_an_epoch_and_skips_the_tracing_batch():
    """A backbone comparison gives every net the same seconds; a big net may get only 2-3 epochs in them,
    so the learning rate must follow the clock batch by batch, from after the first (tracing) batch, and
    the run's one clock stops training when the budget is spent."""
    from fer_core.train.callbacks import RunState, TrainClock
    from fer_core.train.schedule import CosineSchedule

    class SlowBatches(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.lrs = []

        def on_train_batch_begin(self, batch, logs=None):
            time.sleep(0.3 if batch == 0 else 0.02)   # the first batch's sleep stands for graph tracing

        def on_train_batch_end(self, batch, logs=None):   # the rate this batch trained with
            self.lrs.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    rec = SlowBatches()
    x, y = np.zeros((40, 4), "float32"), keras.utils.to_categorical(np.arange(40) % 2, 2)
    state = RunState()
    clock = TrainClock(0.6, 0.0, state, lambda msg: None)
    model.fit(x, y, batch_size=1, epochs=1, callbacks=[clock, CosineSchedule(1e-2, 100, clock), rec], verbose=0)
    lrs = np.array(rec.lrs)
    assert lrs[0] == pytest.approx(1e-2) and lrs[1] == pytest.approx(1e-2, rel=0.02)   # the tracing batch is free
    assert np.all(np.diff(lrs[1:]) <= 1e-9) and lrs[20] < 0.9e-2   # annealing inside the one epoch
    # the budget (0.6 s of >= 0.02-s batches) is spent before the 40 batches: stopped, annealed near the floor
    assert len(lrs) < 40 and lrs[-1] < 0.05 * 1e-2 and state.budget_spent


# ---------------------------------------------------------------- which weights are kept, and how they are tested
@pytest.mark.timeout(600)
def test_keep_last_stores_the_final_weights_and_flip_tta_averages_the_mirror(ckplus, tmp_path):
    """--keep last: model.keras holds the last epoch's weights, not the best-validating epoch's;
    --test-tta flip: the stored test probabilities are the mean over each face and its mirror image."""
    from fer_core.data.datasets import load_dataset
    from fer_core.model.predict import make_predict_fn
    from fer_core.report.evaluation import to_model_input
    r = run_cli("train", "--data", ckplus, "--runs-dir", tmp_path, *QUICK, "--epochs", "3", "--keep", "last",
                "--test-tta", "flip", "--name", "keep-last")
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    metrics = store.read_json(run_dir / "metrics.json")
    assert metrics["kept"] == "last" and metrics["kept_epoch"] == 3
    assert metrics["test"]["tta"] == "flip"
    kept, last = load_model_safe(run_dir / "model.keras"), load_model_safe(run_dir / "last.keras")
    for a, b in zip(kept.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(a, b)

    ds = load_dataset(ckplus, 48)
    test_idx = store.read_json(run_dir / "split.json")["indices"]["test"]
    x = to_model_input(ds.images[test_idx])
    predict = make_predict_fn(kept)
    expected = (np.asarray(predict(x)) + np.asarray(predict(x[:, :, ::-1]))) / 2
    with open(run_dir / "predictions.csv") as f:
        stored = np.array([[float(v) for v in row[3:]] for row in list(csv.reader(f))[1:]])
    np.testing.assert_allclose(stored, expected, atol=2e-5)
    plain = np.asarray(predict(x))
    assert np.abs(stored - plain).max() > 1e-3        # the mirror really changed something


def test_unknown_keep_or_tta_is_refused_with_the_choices():
    from fer_core.errors import UserError
    from fer_core.train.checks import validate_config
    with pytest.raises(UserError, match="keep 'final'.*best, last"):
        validate_config(TrainConfig(data="x", keep="final"))
    with pytest.raises(UserError, match="test tta 'mirror'.*off, flip, crops"):
        validate_config(TrainConfig(data="x", test_tta="mirror"))


def test_a_resumed_run_counts_training_time_not_the_time_it_lay_stopped(tmp_path):
    """A run with a time budget, stopped after its first epoch and resumed much later, trains its remaining
    epochs: the budget's clock restarts at the seconds the first epoch took, not at the original start."""
    data = _tiny_folder(tmp_path / "data")
    cfg = TrainConfig(data=str(data), backbone="custom_cnn", input_size=32, epochs=1, batch_size=16,
                      schedule="cosine", max_train_seconds=600, runs_dir=str(tmp_path / "runs"), name="budget")
    run_dir = train(cfg)
    first_epoch = store.read_json(run_dir / "state.json")["epoch_seconds"][0]
    store.update_run(run_dir, config={**cfg.to_dict(), "epochs": 3})   # more epochs left to do
    time.sleep(2)                                                          # it lies stopped a while
    train(TrainConfig(**{**cfg.to_dict(), "epochs": 3}), run_dir=run_dir, resume=True)
    assert [int(r["epoch"]) for r in _history(run_dir)] == [1, 2, 3]
    after = (run_dir / "train.log").read_text().split("resuming after epoch 1")[1]
    assert "training budget" not in after
    used = float(re.search(r"time budget: ([\d.]+) s of 600 s used", after).group(1))
    assert used == pytest.approx(first_epoch, abs=0.1)                     # the first epoch's seconds only
