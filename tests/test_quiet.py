"""A quiet CLI: a command prints its answer and real errors, not TensorFlow's start-up lines (cuInit, oneDNN,
cudart, absl), which read like errors to a user."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow

STARTUP = ("cuInit", "oneDNN", "cudart", "cuda drivers", "absl::InitializeLog", "XNNPACK delegate")


def run_cli(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTEST_CURRENT_TEST")}
    return subprocess.run([sys.executable, "-m", "fer_core", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_predict_prints_faces_and_no_tensorflow_startup_lines(photos):
    r = run_cli("predict", photos / "2008_001322.jpg")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "face 1" in r.stdout
    assert not [line for line in r.stderr.splitlines() if any(s in line for s in STARTUP)], r.stderr


def test_a_real_error_still_reaches_the_user(tmp_path):
    r = run_cli("predict", tmp_path / "missing.jpg")
    assert r.returncode != 0
    said = r.stdout + r.stderr
    assert "missing.jpg" in said and "cannot read the file" in said
    assert not any(s in r.stderr for s in STARTUP), r.stderr


def test_a_command_error_on_stderr_passes_the_filter(tmp_path):
    r = run_cli("resume", tmp_path / "no-such-run")
    assert r.returncode != 0 and "error" in r.stderr, (r.stdout, r.stderr)
    assert not any(s in r.stderr for s in STARTUP), r.stderr
