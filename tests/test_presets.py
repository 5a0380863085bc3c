"""Train-form presets: each shows the time and accuracy its committed recipe reached, read from the committed
records (the run store's headline runs, the reference collections)."""

from __future__ import annotations

import pytest

from fer_core.config import TrainConfig, check_options
from fer_core.runs import archive, store
from fer_core.runs.defaults import FER2013_SCRATCH_RUN_ID
from fer_core.train import presets

pytestmark = pytest.mark.unit


def test_presets_are_valid_configs_and_say_what_they_reached(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_RESULTS_DIR", str(tmp_path / "no-collections"))    # only what this test writes
    for kind in presets.PRESETS.values():
        for p in kind:
            check_options(TrainConfig(data="x", **p.options))       # every preset is a config the form can hold
    d = tmp_path / FER2013_SCRATCH_RUN_ID
    d.mkdir()
    rows = [[e, "full", 1, 0.5, 1, 0.40 + 0.02 * e, 1e-3, 150] for e in range(1, 31)]   # 150 s an epoch
    store.write_csv_atomic(store.history_path(d), ["epoch", "phase", "loss", "accuracy", "val_loss",
                                                         "val_accuracy", "learning_rate", "seconds"], rows)
    store.update_run(d, status="completed", train_seconds=4500.0)
    store.write_json_atomic(store.metrics_path(d), {"test": {"accuracy": 0.66}})
    quick, good, best = presets.PRESETS["large"]
    assert presets.figures(quick, tmp_path)["accuracy"] == 0.40 + 0.02 * 4       # 4 epochs fit in 10 minutes
    assert abs(presets.figures(good, tmp_path)["accuracy"] - (0.40 + 0.02 * 12)) < 1e-9
    f = presets.figures(best, tmp_path)
    assert f["accuracy"] == 0.66 and f["minutes"] == 75
    store.write_json_atomic(tmp_path / "kfold-ck-scratch.json", {"folds": 10, "mean_accuracy": 0.896,
                                                                     "train_seconds_all_runs": 1200})
    f = presets.figures(presets.PRESETS["small"][0], tmp_path)
    assert f["accuracy"] == 0.896 and f["minutes"] == 2
    assert presets.figures(presets.PRESETS["small"][1], tmp_path)["accuracy"] is None   # not measured here
    monkeypatch.delenv("FER_RESULTS_DIR")                        # the committed reference collections quote it
    committed = next(s for s in archive.kfold_summaries() if s["group"] == "ck-transfer-ferplus")
    f = presets.figures(presets.PRESETS["small"][1], tmp_path)
    assert f["accuracy"] == committed["mean_accuracy"] and f["source"] == "ck-transfer-ferplus"
    assert f["precision"] == "mixed_bfloat16"
    assert presets.kind_of(25_000) == "large" and presets.kind_of(800) == "small"
