"""The app's default model, named in one place."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]     # fer_core/runs/defaults.py -> the repository
RUNS_DIR = REPO_ROOT / "runs"
# The committed default run (FER2013, fer_vgg). Re-train with the command in the README.
DEFAULT_RUN_ID = "default-fer_vgg-fer2013"
DEFAULT_RUN = RUNS_DIR / DEFAULT_RUN_ID
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
