"""Run a command as it would run on an AVX2-only CPU: `python -m bench.as_avx2 [--check] -- COMMAND ...`.

Most users' CPUs have AVX2 but not AVX-512 or bf16, and the libraries under the app (XNNPACK, oneDNN, numpy)
choose their kernels from the CPUID instruction. `avx2_only.c`, compiled here with the system's gcc and
preloaded, makes CPUID trap in the command's processes and answers it without the feature bits above AVX2, so
every library takes its AVX2 path on this machine's core, clock and caches. glibc reads CPUID before any
preloaded code runs, so its own AVX-512 string routines are turned off through GLIBC_TUNABLES as well.
`--check` prints the instruction set oneDNN and numpy see under the mask, and exits.

Example: `python -m bench.as_avx2 -- python -m bench.throughput` (crops/s, ours beside fer's).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import CPUID_MASK_NOTE as MASK_NOTE   # print_machine prints it beside the machine line
from fer_core.runs.quiet import real_stderr_back

SOURCE = Path(__file__).with_name("avx2_only.c")
GLIBC_MASK = "glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512_4FMAPS,-AVX512_4VNNIW"
CHECK = ("import numpy, tensorflow as tf; "
         "print('numpy sees:', ' '.join(f for f, on in numpy._core._multiarray_umath.__cpu_features__.items()"
         " if on and f.startswith(('AVX', 'FMA', 'F16C'))));"
         "tf.nn.conv2d(tf.ones((1, 8, 8, 4)), tf.ones((3, 3, 4, 4)), 1, 'SAME')")


def shim_library() -> Path:
    """The compiled shim, cached by the source's hash so an edit recompiles it, in the user's own cache folder
    (a library to be preloaded must not come from a folder other users can write to)."""
    if not shutil.which("gcc"):
        raise SystemExit("error: gcc is needed to build bench/avx2_only.c (apt-get install gcc)")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emotion-studio"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    lib = cache / f"avx2_only-{digest}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.so")
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE), "-ldl"], check=True)
        tmp.replace(lib)
    return lib


def masked_env(lib: Path) -> dict:
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(lib), env.get("LD_PRELOAD", "")]))
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES", ""), GLIBC_MASK]))
    env.pop("DNNL_MAX_CPU_ISA", None)
    # /proc/cpuinfo still lists this CPU's bf16, and training's `auto` precision reads it; the oneDNN cap (which
    # `auto` honours, and which the mask makes moot inside oneDNN) keeps `auto` at float32, as on such a CPU.
    env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    env[MASK_NOTE] = "CPUID masked to AVX2 by bench.as_avx2: the libraries see no AVX-512, VNNI or bf16"
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="print what numpy and oneDNN see under the mask")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    env = masked_env(shim_library())
    if args.check:          # without the oneDNN cap: what oneDNN reads from CPUID itself
        env.pop("ONEDNN_MAX_CPU_ISA")
        env["ONEDNN_VERBOSE"] = "1"
        out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True)
        lines = [ln for ln in (out.stdout + out.stderr).splitlines() if "sees:" in ln or ",isa:" in ln]
        print("\n".join(lines) or out.stderr[-2000:])
        return out.returncode
    if not command:
        ap.error("give a command after --, or --check")
    real_stderr_back()                     # bench's stderr filter would not outlive the exec
    os.execvpe(command[0], command, env)   # the command takes this process's place: its exit status is ours


if __name__ == "__main__":
    sys.exit(main())
