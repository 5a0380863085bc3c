"""Face detection behind a small interface, so a better detector can be dropped in.

A detector is anything with `detect(gray) -> list[(x, y, w, h)]` in the gray image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np


class FaceDetector(Protocol):
    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]: ...


@dataclass
class HaarFaceDetector:
    """OpenCV's shipped frontal-face Haar cascade.

    Detection runs on a copy downscaled so its longer side is at most `detect_width`
    (faces are still found; it is the slow step), and boxes are mapped back to full resolution.
    min_size is in full-resolution pixels; sensitivity 0..1 lowers the cascade's min_neighbors.
    """

    min_size: int = 30
    sensitivity: float = 0.5
    detect_width: int = 640
    scale_factor: float = 1.1

    def __post_init__(self):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade from {path}; reinstall opencv-python-headless<5")

    @property
    def min_neighbors(self) -> int:
        return int(round(9 - 7 * min(max(self.sensitivity, 0.0), 1.0)))   # 9 (strict) .. 2 (sensitive)

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        h, w = gray.shape[:2]
        scale = min(1.0, self.detect_width / max(h, w))
        small = cv2.resize(gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else gray
        min_side = max(12, int(self.min_size * scale))
        boxes = self._cascade.detectMultiScale(small, scaleFactor=self.scale_factor,
                                               minNeighbors=self.min_neighbors, minSize=(min_side, min_side))
        out = []
        for (x, y, bw, bh) in (boxes if len(boxes) else []):
            out.append((int(x / scale), int(y / scale), int(bw / scale), int(bh / scale)))
        return out
