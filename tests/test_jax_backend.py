"""The JAX backend: how a machine with an accelerator but without TensorFlow trains.

The same `train` command runs with KERAS_BACKEND=jax (here on the CPU) in a Python where TensorFlow
cannot be imported, starting from a model the TensorFlow backend wrote; the app's TensorFlow side then
serves and scores the model JAX wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow

pytest.importorskip("jax")   # requirements-dev.txt installs it, so CI never skips this

# Put on PYTHONPATH as sitecustomize.py: the process then behaves as if TensorFlow (and TensorBoard,
# which needs it) were not installed, like the accelerator machine.
NO_TENSORFLOW = """
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorboard"):
            raise ImportError(f"No module named {name!r} (this test hides TensorFlow)")
        return None
sys.meta_path.insert(0, NoTensorFlow())
"""


def test_a_transfer_run_trained_with_jax_is_served_by_tensorflow(tiny_run, ckplus, tmp_path):
    hide = tmp_path / "no_tensorflow"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(NO_TENSORFLOW)
    runs = tmp_path / "runs"
    r = run_cli("train", "--data", ckplus, "--runs-dir", runs, "--backbone", "fer_vgg",
                "--weights", f"run:{tiny_run}", "--split", "subject-kfold:10:0", "--epochs", "2",
                "--fine-tune-layers", "-1", "--fine-tune-epochs", "1", "--fine-tune-lr", "1e-4",
                "--precision", "mixed_bfloat16", "--name", "jax-transfer",
                env={"KERAS_BACKEND": "jax", "PYTHONPATH": str(hide)}, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed"
    assert info["versions"]["backend"] == "jax"
    log = (run_dir / "train.log").read_text()
    assert "[head]" in log and "[finetune]" in log        # both phases of the recipe ran
    jax_test = json.loads((run_dir / "metrics.json").read_text())["test"]

    # The default (TensorFlow) backend loads the same model.keras and scores the same test faces alike.
    r = run_cli("evaluate", run_dir, "--data", ckplus, "--split", "test", "--json", env={"KERAS_BACKEND": "tensorflow"})
    assert r.returncode == 0, r.stderr[-2000:]
    tf_test = json.loads(r.stdout)
    assert tf_test["num_samples"] == jax_test["num_samples"] > 50
    # bfloat16 rounding may differ between backends: the accuracies may differ by at most one face of ~100
    assert abs(tf_test["accuracy"] - jax_test["accuracy"]) <= 1 / jax_test["num_samples"] + 1e-9
