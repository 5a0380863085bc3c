"""Recompute metrics.json's `train` entry of a run with MatchSharpness, as training now measures it.

Runs trained before training.evaluate_train_part existed reported their training accuracy with the
inference blur applied on top of already-blurred training faces. The model is not touched.

    python scripts/fix_train_metrics.py runs/default-fer_vgg-fer2013
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from fer_core import runstore  # noqa: E402
from fer_core.datasets import load_dataset  # noqa: E402
from fer_core.training import evaluate_train_part, load_model_safe  # noqa: E402

run = Path(sys.argv[1])
info = json.loads((run / "run.json").read_text())
split = json.loads((run / "split.json").read_text())
ds = load_dataset(info["config"]["data"], info["config"].get("image_size", 48))
assert ds.fingerprint() == split["dataset_fingerprint"], "not the dataset this run was trained on"
metrics = json.loads((run / "metrics.json").read_text())
m, _ = evaluate_train_part(load_model_safe(run / "model.keras"), ds, np.array(split["indices"]["train"]))
print(f"train accuracy {metrics['train']['accuracy']:.4f} -> {m['accuracy']:.4f}")
metrics["train"] = m
runstore.write_json_atomic(run / "metrics.json", metrics)
