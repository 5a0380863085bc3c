"""Dataset faces placed on a larger canvas, as a face sits in a photo: what the framing and rotation
benchmarks feed the detector. A 48x48 face is upscaled 3x and given a border of its own edge pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SCALE = 3            # 48 px -> 144 px
BORDER = 72          # on a 288 x 288 canvas


def on_canvas(face: np.ndarray, angle: float = 0.0) -> np.ndarray:
    """The face, upscaled, on a canvas, turned by `angle` degrees (counter-clockwise) about the centre."""
    side = face.shape[0] * SCALE
    up = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    canvas = cv2.copyMakeBorder(up, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_REPLICATE)
    if angle:
        c = canvas.shape[0] / 2
        m = cv2.getRotationMatrix2D((c, c), angle, 1.0)
        canvas = cv2.warpAffine(canvas, m, canvas.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
    return canvas


def sample_files(root: Path, prefix: str, n: int, seed: int = 0) -> list[Path]:
    files = sorted(root.glob(f"test/*/{prefix}_*"))
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), size=min(n, len(files)), replace=False))]
