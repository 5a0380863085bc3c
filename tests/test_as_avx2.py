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


XNNPACK_AFTER_MARK = """
import sys, numpy as np, tensorflow
from fer_core.model.predict import make_tflite_fn
sys.stderr.write("MARK\\n"); sys.stderr.flush()
print(make_tflite_fn("{model}")(np.zeros((1, 48, 48, 1), np.float32)).shape)
"""


def test_the_apps_litert_engine_asks_cpuid_through_the_mask(default_run):
    """XNNPACK (under LiteRT, the app's engine) reads the instruction set when its first interpreter is made:
    its CPUID questions, leaf 7 (AVX-512, VNNI) and 7.1 (bf16) among them, must reach the mask."""
    env_log = {**os.environ, "FAKE_CPUID_LOG": "1"}
    env_log.pop("PYTEST_CURRENT_TEST", None)
    script = XNNPACK_AFTER_MARK.format(model=default_run / "model.tflite")
    r = subprocess.run([sys.executable, "-m", "bench.as_avx2", "--", sys.executable, "-c", script], cwd=REPO,
                       capture_output=True, text=True, timeout=240, env=env_log)
    assert r.returncode == 0 and "(1, 7)" in r.stdout, r.stdout + r.stderr[-2000:]
    after = r.stderr.split("MARK", 1)[1]
    assert "fake cpuid: leaf 0x00000007.0" in after and "fake cpuid: leaf 0x00000007.1" in after, after[-2000:]


def test_numpy_under_pythons_faulthandler_still_sees_avx2():
    """faulthandler installs its own SIGSEGV handler before numpy asks CPUID: the mask's must stay in front."""
    r = run_masked("--", sys.executable, "-X", "faulthandler", "-c",
                   "import numpy; print(numpy._core._multiarray_umath.__cpu_features__['AVX512F'])")
    assert r.returncode == 0 and r.stdout.strip() == "False", (r.returncode, r.stdout, r.stderr[-1000:])


def test_a_thread_that_blocks_segfaults_still_gets_masked_answers():
    r = run_masked("--", sys.executable, "-c",
                   "import signal; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGSEGV}); import numpy; "
                   "print(numpy._core._multiarray_umath.__cpu_features__['AVX512F'])")
    assert r.returncode == 0 and r.stdout.strip() == "False", (r.returncode, r.stdout, r.stderr[-1000:])


def test_unmasked_this_machine_differs_where_it_has_avx512():
    """Without the mask numpy sees what /proc/cpuinfo lists (so the check above is the mask's doing)."""
    if "avx512f" not in cpu_flags():
        pytest.skip("this CPU has no AVX-512 to hide")
    import numpy
    assert numpy._core._multiarray_umath.__cpu_features__["AVX512F"]


def test_a_real_segfault_still_kills_the_program():
    r = run_masked("--", sys.executable, "-c", "import ctypes; ctypes.string_at(0)")
    assert r.returncode == -11, (r.returncode, r.stderr[-1000:])


def test_a_segfault_sent_by_kill_still_kills_the_program():
    r = run_masked("--", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV); print('on')")
    assert r.returncode == -11 and "on" not in r.stdout, (r.returncode, r.stdout)


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
