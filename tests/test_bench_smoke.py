"""Every benchmark runs end to end in its --quick mode on a real (tiny) model and prints its figures.

Timings are not asserted here: speed is proved by the bench commands on an idle machine
(bench/README.md). What is asserted: each runs, names the machine, and prints the figures it promises.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow

NUM = r"[\d,]+(\.\d+)?"


def run_bench(name: str, *args, timeout: int = 300) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run([sys.executable, "-m", f"bench.{name}", *map(str, args), "--quick"], cwd=REPO,
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"bench.{name} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    out = r.stdout
    assert re.search(r"^machine: .+, \d+ cores", out, re.M), out
    assert re.search(r"^software: .*TensorFlow .*Keras ", out, re.M), out
    return out


def test_pipeline(tiny_run, photos):
    out = run_bench("pipeline", tiny_run)                         # BlazeFace: every frame searched
    assert re.search(rf"webcam 640x480, detect_every=1: \d+ frames, {NUM} frames/s", out), out
    assert re.search(rf"12-MP photo 4000x3000 .*mean {NUM} s", out), out
    out = run_bench("pipeline", tiny_run, "--detector", "haar")
    for mode in ("detect_every=1", "detect_every=3", "detect_every=3, background search"):
        assert re.search(rf"webcam 640x480, {mode}: \d+ frames, {NUM} frames/s, p50 {NUM} ms, "
                         rf"p95 {NUM} ms", out), out
    assert re.search(rf"12-MP photo 4000x3000 .*mean {NUM} s", out), out


def test_throughput(tiny_run, fer2013):
    out = run_bench("throughput", tiny_run)
    assert re.search(rf"EmotionRecognizer.classify: {NUM} crops/s", out), out
    assert re.search(rf"^fer(: not installed| .*FER._classify_emotions: {NUM} crops/s)", out, re.M), out
    assert re.search(rf"keras \(as stored\) +{NUM} +{NUM} +{NUM}", out), out
    assert re.search(rf"keras float32 copy +{NUM} +{NUM} +{NUM}", out), out


def test_model_cost(tiny_run, fer2013):
    out = run_bench("model_cost", tiny_run)
    assert re.search(rf"the run's model, float32 conversion +{NUM} M +{NUM} +{NUM}", out), out
    assert re.search(rf"fer_vgg at 32-64-128-256, random, float32 +118\.0 M +{NUM}", out), out


def test_memory(tiny_run, photos):
    out = run_bench("memory", tiny_run)
    assert re.search(rf"RSS after warm-up \(100 frames\): {NUM} MB", out), out
    assert re.search(rf"RSS growth over 150 frames \(\d+ faces classified\): [+-]{NUM} MB", out), out


def test_frozen_epoch(ckplus, fer2013):
    out = run_bench("frozen_epoch")
    for name in ("CK+48", "FER2013 subset"):
        assert re.search(rf"{re.escape(name)}: \d+ train images", out), out
    ratios = re.findall(rf"recompute epoch {NUM} s \| cached epoch {NUM} s \| ratio (\d+)x", out)
    assert len(ratios) == 2, out
    # the same result both ways: the cache must not change what the head learns
    agree = [float(v) for v in re.findall(r"test predictions agree ([\d.]+)%", out)]
    assert len(agree) == 2 and min(agree) >= 95.0, out


def test_vs_fer(tiny_run, photos):
    out = run_bench("vs_fer", tiny_run)
    assert re.search(rf"ours +analyze \+ draw_faces: +{NUM} frames/s", out), out
    for detector in ("ours BlazeFace", "ours Haar"):
        assert re.search(rf"{detector} +recall {NUM} \(\d+/43\), precision {NUM}", out), out
    assert re.search(r"faces reported on dogs.jpg .*: ours BlazeFace 0, ", out), out      # no dog face
    try:
        import fer  # noqa: F401
    except ImportError:
        assert "pip install --no-deps fer tqdm requests pillow" in out, out
    else:
        assert re.search(rf"ratio ours/fer: {NUM}x", out), out


def test_detection(photos, fer2013):
    out = run_bench("detection")
    for name in ("FER2013 PrivateTest x256", "FER+ test x256", "twface 256x256"):
        assert re.search(rf"^  {re.escape(name)} \(\d+ pictures\)\n    ours, photo path +found +{NUM}% \(\d+/\d+\) +"
                         rf"precision {NUM} \(\d+/\d+\) +{NUM} ms/picture", out, re.M), out
    assert re.search(r"small faces: 1 canvases 3000x2000, \d+ faces", out), out
    assert re.search(rf"^  ours, photo path +recall {NUM} \(\d+/\d+\) \[.*40-80 {NUM} \(\d+/\d+\).*\] +precision {NUM}",
                     out, re.M), out
    assert re.search(rf"^  ours, photo path +recall {NUM} \(\d+/43\) .*precision {NUM}", out, re.M), out
    assert re.search(r"faces reported on dogs.jpg .*: ours, photo path 0, ours, webcam path 0", out), out
    try:
        import fer  # noqa: F401
    except ImportError:
        assert "pip install --no-deps fer tqdm requests pillow" in out, out
    else:
        assert re.search(rf"fer FER\(\)\.find_faces +found +{NUM}%", out), out


def test_calibration(default_run):
    """Calibrate to me on twface's first 12 performers with the committed default model (no training here)."""
    from conftest import SHARED, need
    need(SHARED / "twface")
    out = run_bench("calibration", default_run)
    assert re.search(r"^profile rule: (logistic|prototypes), blend ", out, re.M), out
    for k in (1, 2, 3):
        assert re.search(rf"\| twface, other elicitation types \| {k} \| {NUM}% \| \*\*{NUM}%\*\* \| {NUM}% \| "
                         rf"{NUM}% \| \d+ / \d+ \|", out), out
    assert re.search(rf"\| twface, same elicitation type as the shots .*\| 1 \| {NUM}% \| \*\*{NUM}%\*\*", out), out
    assert re.search(rf"adaptation \(.+\): {NUM} ms for 21 whole photos, of which {NUM} ms finding", out), out
    out = run_bench("calibration", default_run, "--choose")
    assert re.search(rf"^development people .*no profile {NUM}%", out, re.M), out
    assert re.search(rf"logistic +best {NUM}% at blend ", out), out


def test_run_listing():
    out = run_bench("run_listing")
    assert re.search(r"^50 runs \(5 k-fold groups, folded into 5 rows\):", out, re.M), out
    assert re.search(rf"first time \(every run's files read\): {NUM} s", out), out
    assert re.search(rf"a rerun with nothing changed: listing {NUM} s, the whole table {NUM} s", out), out


def test_unseen(default_run, ckplus):
    """People no model here trained on: the app's answers (the run's logit adjustment applied) and, for CK+, the
    model's own beside them."""
    from conftest import SHARED, need
    need(SHARED / "twface")
    out = run_bench("unseen", default_run)
    assert re.search(r"^fer2013-fer_vgg-48-cont \(as the app answers\):$", out, re.M), out
    assert re.search(rf"^  CK\+ +927 faces: accuracy {NUM}%, macro F1 {NUM}%, disgust recall {NUM}%", out, re.M), out
    assert re.search(rf"^  twface +70 faces: accuracy {NUM}%", out, re.M), out
    assert re.search(rf"^  CK\+ \(the model's own, no logit adjustment\) +927 faces: accuracy {NUM}%", out, re.M), out


def test_preset_times(ckplus):
    out = run_bench("preset_times", timeout=600)
    row = rf"^\| Quick look \| (float32|mixed_bfloat16) \| {NUM} min .*\| {NUM} min \| {NUM} min \| {NUM} \|$"
    assert re.search(row, out, re.M), out


def test_page_times():
    out = run_bench("page_times", timeout=600)
    for page in ("Home", "pages/runs.py", "pages/compare.py", "pages/train.py", "... tab Misclassified"):
        assert re.search(rf"{re.escape(page)} +{NUM} +{NUM}$", out, re.M), out
