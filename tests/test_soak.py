"""Soak: a long webcam session through one recognizer must not grow the process.

The full version is 30 minutes of frames (`python -m bench.memory RUN --frames 60000`, about 30 min
at the measured frame rate); CI runs FER_SOAK_FRAMES frames (default 1,500, about a minute).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.browser

FRAMES = int(os.environ.get("FER_SOAK_FRAMES", "1500"))


def test_webcam_frames_do_not_grow_memory(tiny_run, photos):
    r = subprocess.run([sys.executable, "-m", "bench.memory", str(tiny_run), "--frames", str(FRAMES)], cwd=REPO,
                       capture_output=True, text=True, timeout=1800,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"RSS growth over (\d+) frames \((\d+) faces classified\): ([+-][\d.]+) MB", r.stdout)
    assert m, r.stdout
    frames, faces, growth = int(m.group(1)), int(m.group(2)), float(m.group(3))
    assert frames == FRAMES and faces >= FRAMES // 2        # the frames really had faces in them
    assert growth < 25, r.stdout                            # a leak of even 20 kB per frame would show
