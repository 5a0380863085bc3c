"""What every benchmark shares: its command line, the machine it ran on, the real photos and their boxes."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from fer_core.runs.defaults import DEFAULT_RUN

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FER_SHARED_DATA", REPO.parent / "shared" / "data"))
PHOTOS = SHARED / "photos"
FER2013 = SHARED / "fer2013"
CKPLUS = SHARED / "ckplus" / "CK+48"



def parser(description: str, run_dir: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    if run_dir:
        p.add_argument("run_dir", nargs="?", default=str(DEFAULT_RUN),
                       help=f"run folder with model.keras (default: {DEFAULT_RUN.relative_to(REPO)})")
    p.add_argument("--quick", action="store_true", help="a shortened run (smoke tests); figures are rough")
    p.add_argument("--detector", default="blazeface", choices=["blazeface", "haar"], help="our face detector")
    return p


def check_run(run_dir: str) -> Path:
    path = Path(run_dir)
    if not (path / "model.keras").is_file():
        sys.exit(f"error: {path} has no model.keras; pass a completed run folder "
                 "(python -m fer_core runs lists them)")
    return path


def need(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"error: shared data not found at {path}; set FER_SHARED_DATA to the data folder")
    return path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return " ".join(f for f in ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
                                if f in flags) or "no AVX-512"
    except OSError:
        pass
    return "?"


CPUID_MASK_NOTE = "BENCH_CPUID_MASK"   # set by bench.as_avx2: what the libraries were shown of the CPU


def print_machine() -> None:
    """The machine line every benchmark prints, so figures can be compared fairly."""
    from fer_core.model.kerasenv import library_versions
    v = library_versions()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {cpu_model()} ({cpu_flags()}), {cores} cores, load average {load:.2f} at start")
    print(f"software: Python {platform.python_version()}, TensorFlow {v.get('tensorflow', '-')}, "
          f"Keras {v['keras']} ({v['backend']}), OpenCV {v.get('opencv', '-')}, NumPy {v['numpy']}")
    if os.environ.get(CPUID_MASK_NOTE):
        print(f"note: {os.environ[CPUID_MASK_NOTE]}")
    if load > 0.5 * (cores or 1):
        print("note: the machine was busy; timings are not final figures")


def rss_mb() -> float:
    """Current resident memory of this process in MB (Linux /proc; else the peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def photo_paths() -> list[Path]:
    return sorted(need(PHOTOS).glob("*.jpg"))


def read_bgr(path: Path) -> np.ndarray:
    from fer_core.data.images import read_image_file
    return read_image_file(path)


def face_boxes() -> dict[str, list[tuple[int, int, int, int]]]:
    """Hand-drawn face boxes per photo file name, (x, y, w, h), from training.xml + testing.xml."""
    boxes: dict[str, list] = {}
    for xml in ("training.xml", "testing.xml"):
        root = ET.parse(need(PHOTOS / xml)).getroot()
        for img in root.iter("image"):
            for b in img.iter("box"):
                boxes.setdefault(img.get("file"), []).append(
                    (int(b.get("left")), int(b.get("top")), int(b.get("width")), int(b.get("height"))))
    return boxes


def percentiles(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):.1f} ms, p95 {np.percentile(a, 95):.1f} ms, max {a.max():.1f} ms"


def matched(detected, truth, threshold: float = 0.3) -> set[int]:
    """Indices of true boxes matched one-to-one by detections with IoU >= threshold (greedy, best first)."""
    from fer_core.serve.detectors import box_iou
    pairs = sorted(((box_iou(d, t), i, j) for i, d in enumerate(detected) for j, t in enumerate(truth)),
                   reverse=True)
    used_d, used_t = set(), set()
    for v, i, j in pairs:
        if v < threshold:
            break
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
    return used_t
