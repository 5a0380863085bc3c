"""The house rules, checked on every CI run: the linter's configuration (pyproject.toml) passes, and the
house check finds no import circle (module or subpackage), no function over 60 lines, no Streamlit in fer_core."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO, SHARED

pytestmark = pytest.mark.unit


def test_the_code_passes_the_linter():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (requirements-dev.txt installs it)")
    r = subprocess.run([ruff, "check", "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]


def test_the_house_check_passes_strictly():
    tool = SHARED.parent / "tools" / "house_check.py"
    if not tool.is_file():
        pytest.skip(f"{tool} not found")
    r = subprocess.run([sys.executable, str(tool), "--strict"], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
