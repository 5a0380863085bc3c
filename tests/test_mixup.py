"""--mixup: training faces blended in pairs, labels blended by the same weight."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import run_cli
from test_training import _tiny_folder

from fer_core.config import TrainConfig
from fer_core.runs import store
from fer_core.train import mixup
from fer_core.train.loop import train

pytestmark = pytest.mark.slow


def _faces_and_labels(n=10, k=3):
    """Face i is an 'image' with a single 1 at pixel i, so a blend shows which two faces it holds and how much."""
    x = np.eye(n, dtype="float32").reshape(n, n, 1, 1)
    y = np.eye(k, dtype="float32")[np.arange(n) % k]
    return x, y


def test_each_blend_holds_two_faces_and_their_labels_by_the_same_weight():
    x, y = _faces_and_labels()
    batches = mixup.MixupBatches(x, y, batch_size=4, alpha=0.4, seed=0, class_weight={0: 1.0, 1: 2.0, 2: 3.0})
    assert len(batches) == 3
    seen = []
    for i in range(len(batches)):
        xb, yb, wb = batches[i]
        for xm, ym, w in zip(xb.reshape(len(xb), -1), yb, wb):
            own = int(xm.argmax())
            lam = xm[own]
            assert 0.5 <= lam <= 1 and np.isclose(xm.sum(), 1.0)    # two faces, the own one the larger part
            partner = int(np.argsort(xm)[-2]) if lam < 1 else own
            expected = lam * y[own] + (1 - lam) * y[partner] if partner != own else y[own]
            np.testing.assert_allclose(ym, expected, rtol=1e-6, atol=1e-6)
            assert w == 1.0 + own % 3                                # the class weight of its own label
            seen.append(own)
    assert sorted(seen) == list(range(10))                           # every face once per epoch
    first = list(batches.order)
    batches.on_epoch_end()
    assert list(batches.order) != first                              # and a new order the next epoch


def test_a_run_with_mixup_trains_on_blended_batches(tmp_path, monkeypatch):
    served = []
    original = mixup.MixupBatches.__getitem__
    monkeypatch.setattr(mixup.MixupBatches, "__getitem__", lambda self, i: served.append(i) or original(self, i))
    cfg = TrainConfig(data=str(_tiny_folder(tmp_path / "data")), backbone="custom_cnn", input_size=32, epochs=2,
                      batch_size=8, mixup=0.4, runs_dir=str(tmp_path / "runs"), name="mix")
    run_dir = train(cfg)
    info = store.read_json(run_dir / "run.json")
    assert info["status"] == "completed" and info["config"]["mixup"] == 0.4
    n_train = store.read_json(run_dir / "split.json")["counts"]["train"]
    assert len(served) >= 2 * math.ceil(n_train / 8)                  # every training batch of both epochs


@pytest.mark.parametrize("alpha", ["-0.1", "9"])
def test_an_impossible_mixup_is_refused_with_a_named_error(tmp_path, alpha):
    r = run_cli("train", "--data", _tiny_folder(tmp_path / "data"), "--runs-dir", tmp_path / "runs",
                "--mixup", alpha)
    assert r.returncode == 2 and f"mixup {float(alpha)} is out of range" in r.stderr and "Traceback" not in r.stderr
