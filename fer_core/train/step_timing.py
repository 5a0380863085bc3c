"""How long a recipe will train on this machine: one training step timed here, times the steps it will take.

The presets quote times from the committed runs, measured on the development machine in its precision. A
machine that trains in another precision (no bf16 instructions: float32) or on another CPU takes a different
time per step, so the Train form times a few real steps of the recipe's model here before it quotes a time for a
recipe counted in epochs. The timing runs in a child process: it sets Keras' global dtype policy and builds a
model, neither of which may leak into the app's own process.

    python -m fer_core.train.step_timing --backbone fer_vgg --input-size 48 --batch-size 32 --precision float32
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

# Per epoch, training also reads its validation faces once (about a tenth of the training part, a forward pass
# each: a third of a step's work) and saves a checkpoint, and now and then an epoch runs slower than the
# fastest (on a shared machine one epoch in four took up to twice as long); once, it loads the faces and scores
# its test part. bench.preset_times checks the estimate against whole trainings.
EPOCH_OVERHEAD = 0.15
RUN_OVERHEAD_SECONDS = 15.0
EPOCH_STEPS, TIMED_EPOCHS = 20, 3    # epochs of fewer steps ran up to half as fast per step in float32


def estimated_seconds(epochs: int, num_train: int, batch_size: int, seconds_per_step: float) -> float:
    """Seconds a run of `epochs` over `num_train` faces takes at `seconds_per_step`."""
    steps = epochs * max(1, math.ceil(num_train / max(1, batch_size)))
    return steps * seconds_per_step * (1 + EPOCH_OVERHEAD) + RUN_OVERHEAD_SECONDS


def time_steps(backbone: str, input_size: int, batch_size: int, precision: str, image_size: int = 48,
               optimizer: str = "adam") -> float:
    """Seconds per training step of the recipe's model on random faces, in this process: one fit of a few short
    epochs, as training fits all its epochs at once; the fastest of the epochs after the first (which traces the
    step). On a shared machine an epoch now and then takes twice as long as the next; EPOCH_OVERHEAD allows for
    those, so the timing itself takes the machine's own speed."""
    import numpy as np

    from fer_core.config import TrainConfig
    from fer_core.model.backbones import build_model
    from fer_core.model.kerasenv import keras
    from fer_core.train.schedule import compile_model
    keras.mixed_precision.set_global_policy(precision)
    cfg = TrainConfig(data="-", backbone=backbone, input_size=input_size, image_size=image_size,
                      batch_size=batch_size, optimizer=optimizer)
    model, _, _ = build_model(backbone, 7, image_size=image_size, input_size=input_size)
    compile_model(model, cfg, 1e-3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size * EPOCH_STEPS, image_size, image_size, 1)).astype("float32")
    y = np.eye(7, dtype="float32")[rng.integers(0, 7, len(x))]      # one-hot, as training gives them
    ends = [time.perf_counter()]
    clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    model.fit(x, y, batch_size=batch_size, epochs=1 + TIMED_EPOCHS, verbose=0, callbacks=[clock])
    return min(b - a for a, b in zip(ends[1:], ends[2:])) / EPOCH_STEPS


@dataclass(frozen=True)
class Recipe:
    """What a training step's time depends on."""
    backbone: str = "fer_vgg"
    input_size: int = 48
    batch_size: int = 32
    precision: str = "float32"
    image_size: int = 48
    optimizer: str = "adam"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "fer_core.train.step_timing", "--backbone", self.backbone, "--input-size",
                str(self.input_size), "--batch-size", str(self.batch_size), "--precision", self.precision,
                "--image-size", str(self.image_size), "--optimizer", self.optimizer]


# One timing per recipe for the app's life, shared by every session. A thread waits on the child (and so reaps
# it: an unread child would stay <defunct> for as long as the app runs) and keeps its answer.
_timings: dict[Recipe, threading.Thread] = {}
_answers: dict[Recipe, float] = {}
_failed: dict[Recipe, float] = {}        # when a timing last failed: tried again after RETRY_AFTER seconds
_lock = threading.Lock()
CHILD_TIMEOUT = 180.0
RETRY_AFTER = 600.0


def _time_in_child(recipe: Recipe) -> None:
    from fer_core.runs.defaults import REPO_ROOT
    try:       # `python -m` in the repository root finds fer_core there, wherever the app was started from
        done = subprocess.run(recipe.command(), capture_output=True, text=True, timeout=CHILD_TIMEOUT,
                              cwd=REPO_ROOT)
        _answers[recipe] = float(json.loads(done.stdout.strip().splitlines()[-1])["seconds_per_step"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError, TypeError):
        with _lock:    # no figure: a later start times it again, not at once (the page starts one every rerun)
            _failed[recipe] = time.monotonic()
            _timings.pop(recipe, None)


def start_timing(recipe: Recipe) -> None:
    """Start timing RECIPE in the background (the Train page does so on opening, so the answer is usually
    there by the time a dataset has been read); a call while it is timed, or after it was, does nothing."""
    with _lock:
        failed_lately = recipe in _failed and time.monotonic() - _failed[recipe] < RETRY_AFTER
        if recipe not in _timings and recipe not in _answers and not failed_lately:
            _timings[recipe] = threading.Thread(target=_time_in_child, args=(recipe,), daemon=True,
                                                name="step-timing")
            _timings[recipe].start()


def seconds_per_step(recipe: Recipe, wait: float = CHILD_TIMEOUT) -> float | None:
    """RECIPE's seconds per training step on this machine, once start_timing has timed it (in a child process:
    time_steps); None where it was not started, is still being timed after `wait` seconds, or failed."""
    with _lock:
        timing = _timings.get(recipe)
    if timing is not None:
        timing.join(wait)
    return _answers.get(recipe)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fer_core.train.step_timing", description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="fer_vgg")
    ap.add_argument("--input-size", type=int, default=48)
    ap.add_argument("--image-size", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    ap.add_argument("--optimizer", default="adam")
    a = ap.parse_args(argv)
    from fer_core.runs.quiet import quiet_startup
    quiet_startup()
    seconds = time_steps(a.backbone, a.input_size, a.batch_size, a.precision, a.image_size, a.optimizer)
    print(json.dumps({"seconds_per_step": round(seconds, 5), "precision": a.precision, "backbone": a.backbone,
                      "batch_size": a.batch_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
