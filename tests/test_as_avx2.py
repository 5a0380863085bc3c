"""bench.as_avx2: a command run through it sees an AVX2-only CPU, and otherwise behaves as it would.

The AVX2 figures in the README (crops/s beside fer's, the presets' times) rest on this mask, so these tests
check what the libraries really see under it, and that a real crash is still a crash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from bench import as_avx2


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("gcc") or "cpuid_fault" not in cpu_flags(),
                                reason="needs gcc and a CPU/kernel that can trap CPUID (cpuid_fault)")]


def run_masked(*command: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """As a user runs it: outside pytest (whose marker variable turns bench's stderr filter off)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return subprocess.run([sys.executable, "-m", "bench.as_avx2", *command], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_numpy_and_onednn_see_avx2_and_nothing_above():
    r = run_masked("--check")
    assert r.returncode == 0, r.stdout + r.stderr
    numpy_line = next(ln for ln in r.stdout.splitlines() if ln.startswith("numpy sees:"))
    assert "AVX2" in numpy_line.split() and "FMA3" in numpy_line.split(), numpy_line
    assert not any(f.startswith("AVX512") for f in numpy_line.split()), numpy_line
    isa = next(ln for ln in r.stdout.splitlines() if ",isa:" in ln)
    assert isa.endswith("isa:Intel AVX2"), isa


def test_unmasked_this_machine_differs_where_it_has_avx512():
    """Without the mask numpy sees what /proc/cpuinfo lists (so the check above is the mask's doing)."""
    if "avx512f" not in cpu_flags():
        pytest.skip("this CPU has no AVX-512 to hide")
    import numpy
    assert numpy._core._multiarray_umath.__cpu_features__["AVX512F"]


def test_a_real_segfault_still_kills_the_program():
    r = run_masked("--", sys.executable, "-c", "import ctypes; ctypes.string_at(0)")
    assert r.returncode == -11, (r.returncode, r.stderr[-1000:])


def test_the_programs_own_segfault_handler_still_runs():
    r = run_masked("--", sys.executable, "-X", "faulthandler", "-c", "import ctypes; ctypes.string_at(0)")
    assert r.returncode != 0 and "Fatal Python error: Segmentation fault" in r.stderr, r.stderr[-1000:]


def test_the_commands_stderr_reaches_the_user():
    r = run_masked("--", sys.executable, "-c", "import sys; sys.stderr.write('to stderr\\n'); raise ValueError('x')")
    assert r.returncode == 1 and "to stderr" in r.stderr and "ValueError: x" in r.stderr, r.stderr[-1000:]


def test_the_command_keeps_its_exit_status_and_gets_the_note():
    r = run_masked("--", sys.executable, "-c",
                   f"import os, sys; print(os.environ['{as_avx2.MASK_NOTE}']); sys.exit(7)")
    assert r.returncode == 7 and "masked to AVX2" in r.stdout, r.stdout + r.stderr
