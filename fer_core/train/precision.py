"""Which number format training uses when the option is `auto` (the default): bfloat16 only where the
hardware computes it natively, float32 otherwise.

On a CPU without bf16 instructions (every AVX2-only CPU, AVX-512 without AVX512-BF16) Keras' mixed_bfloat16
policy emulates each bf16 operation and a training step is many times slower than in float32; with
AVX512-BF16 or AMX it is faster. The CPU says which it has in its instruction flags (/proc/cpuinfo on
Linux). Accelerators: TPUs compute bf16 natively; NVIDIA GPUs from compute capability 8 (Ampere) on.
oneDNN (TensorFlow's CPU kernels) can be told to use less than the CPU has (ONEDNN_MAX_CPU_ISA=AVX2, as
people do to reproduce another machine's numbers); a cap below its bf16 level takes the bf16 instructions away,
so `auto` honours it.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA) that still include native bf16 kernels; any other cap excludes them
BF16_ISA_CAPS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                 "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "ALL", "DEFAULT")
POLICIES = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class Choice:
    requested: str          # the option as given: auto | float32 | mixed_bfloat16
    used: str               # the Keras dtype policy training runs under
    reason: str             # one line a person reads on the form and in the run's record
    device: str             # the CPU (its model name) or accelerator the choice was made for

    def to_dict(self) -> dict:
        return asdict(self)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's instruction flags; an empty set where /proc/cpuinfo does not exist (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_name(cpuinfo: str | None = None) -> str:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return platform.processor() or platform.machine() or "this CPU"
    for line in cpuinfo.splitlines():
        if line.split(":")[0].strip() == "model name":
            return " ".join(line.split(":", 1)[1].split())
    return platform.machine() or "this CPU"


@functools.lru_cache(maxsize=1)
def accelerator() -> tuple[str, bool] | None:
    """(name, computes bf16 natively) of the first GPU or TPU the Keras backend sees; None on a CPU.

    Asked only of the backend already in use, so choosing never imports a second framework."""
    from fer_core.model.kerasenv import backend
    try:
        if backend() == "jax":
            import jax
            dev = jax.devices()[0]
            if dev.platform == "cpu":
                return None
            cc = float(getattr(dev, "compute_capability", 0) or 0)
            return f"{dev.platform} {dev.device_kind}", dev.platform == "tpu" or cc >= 8
        if backend() == "tensorflow":
            import tensorflow as tf
            for kind in ("TPU", "GPU"):
                devs = tf.config.list_physical_devices(kind)
                if devs:
                    details = tf.config.experimental.get_device_details(devs[0]) if kind == "GPU" else {}
                    cc = details.get("compute_capability") or (0, 0)
                    return f"{kind} {details.get('device_name', '')}".strip(), kind == "TPU" or cc[0] >= 8
    except Exception:         # noqa: BLE001  (a device that cannot be asked: decide from the CPU)
        return None
    return None


def isa_cap(environ=None) -> str | None:
    """oneDNN's CPU instruction cap where one is set below native bf16 (e.g. "AVX2"); None: no such cap."""
    env = os.environ if environ is None else environ
    cap = (env.get("ONEDNN_MAX_CPU_ISA") or env.get("DNNL_MAX_CPU_ISA") or "").strip().upper()   # oneDNN reads both
    return cap if cap and cap not in BF16_ISA_CAPS else None


def choose(requested: str, flags: set[str] | None = None, device: tuple[str, bool] | None | str = "ask",
           cpu: str | None = None, environ=None) -> Choice:
    """The policy for `requested`; flags, device (None = no accelerator) and environ can be given, as tests do."""
    if device == "ask":
        device = accelerator()
    if requested in POLICIES:
        where = device[0] if device else (cpu or cpu_name())
        return Choice(requested, requested, f"{requested} as asked", where)
    if device:
        name, native = device
        used = "mixed_bfloat16" if native else "float32"
        why = "computes bfloat16 natively" if native else "has no native bfloat16"
        return Choice(requested, used, f"auto: {used}, the {name} {why}", name)
    flags = cpu_flags() if flags is None else flags
    have = [f for f in BF16_CPU_FLAGS if f in flags]
    cpu = cpu or cpu_name()
    if have and isa_cap(environ):
        return Choice(requested, "float32", f"auto: float32, this CPU has bf16 instructions but "
                      f"ONEDNN_MAX_CPU_ISA={isa_cap(environ)} keeps TensorFlow from using them", cpu)
    if have:
        return Choice(requested, "mixed_bfloat16",
                      f"auto: mixed_bfloat16, this CPU has bf16 instructions ({', '.join(have)})", cpu)
    return Choice(requested, "float32", "auto: float32, this CPU has no bf16 instructions (neither "
                  f"{' nor '.join(BF16_CPU_FLAGS)}), where bfloat16 would be emulated and much slower", cpu)


def for_run(requested: str, run_dir, resume: bool) -> Choice:
    """The choice for a run; a resumed run keeps the one it started with (its checkpoint was saved under it)."""
    from fer_core.runs import store
    if resume:
        before = (store.read_json(store.run_json_path(run_dir), {}) or {}).get("precision")
        if isinstance(before, dict) and before.get("used") in POLICIES:
            return Choice(before.get("requested", requested), before["used"],
                          f"{before['used']} as the run started (resumed)", before.get("device", ""))
    return choose(requested)
