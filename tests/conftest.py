"""Shared fixtures: paths to the shared data, and one small real model trained once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FER_SHARED_DATA", REPO.parent / "shared" / "data"))
FER2013 = SHARED / "fer2013"
CKPLUS = SHARED / "ckplus" / "CK+48"
PHOTOS = SHARED / "photos"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# No queue keeper process behind the tests' backs: a run a test leaves queued in a temporary store must not start
# training later in the suite. The keeper's own tests turn it on (tests/test_queue.py).
os.environ["FER_QUEUE_KEEPER"] = "off"

# Every test file declares one of three markers (`pytestmark = pytest.mark.unit` at its top), so a developer can
# run the fast part alone:
#   python -m pytest -m unit        (seconds to a few minutes: loaders, splits, the run store, the CLI's checks)
#   python -m pytest -m slow        (real trainings, the app under AppTest, exports, benchmarks)
#   python -m pytest -m browser     (the real app in Debian's Chromium)
KINDS = ("unit", "slow", "browser")


def pytest_collection_modifyitems(items):
    """A test file without exactly one of the kinds would drop out of every `-m` selection: said at collection."""
    for item in items:
        kinds = {m.name for m in item.iter_markers() if m.name in KINDS}
        if len(kinds) != 1:
            raise pytest.UsageError(f"{Path(str(item.fspath)).name}: set pytestmark to one of "
                                    f"pytest.mark.{', pytest.mark.'.join(KINDS)} (it has {sorted(kinds) or 'none'})")


def need(path: Path) -> Path:
    """Skip politely when the shared data is absent (CI has it)."""
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def ckplus() -> Path:
    return need(CKPLUS)


@pytest.fixture(scope="session")
def fer2013() -> Path:
    return need(FER2013)


@pytest.fixture(scope="session")
def photos() -> Path:
    return need(PHOTOS)


def run_cli(*args, cwd=REPO, timeout=900, env=None) -> subprocess.CompletedProcess:
    """`python -m fer_core ARGS` as a user would run it."""
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "fer_core", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=e)


def train_cli(data, runs_dir, *args, timeout=900) -> Path:
    """Train through the CLI as a user would; the run folder is the last line of its output."""
    r = run_cli("train", "--data", data, "--runs-dir", runs_dir, *args, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return Path(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def session_runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def tiny_run(session_runs, ckplus) -> Path:
    """A real fer_vgg model trained for 2 epochs on CK+48 through the CLI (~30 s), shared by many tests."""
    run_dir = train_cli(ckplus, session_runs, "--backbone", "fer_vgg", "--epochs", "2",
                        "--split", "subject-kfold:5:0", "--name", "tiny")
    assert (run_dir / "model.keras").is_file()
    return run_dir


@pytest.fixture(scope="session")
def default_run() -> Path:
    """The committed default model (FER2013)."""
    from fer_core.runs import defaults
    if not (defaults.DEFAULT_RUN / "model.keras").is_file():
        pytest.skip("the default model run is not present")
    return defaults.DEFAULT_RUN
