"""Per-frame webcam pipeline: detect, classify all faces in one batch, smooth labels, draw.

Kept separate from the webcam page so it can be benchmarked and tested without a browser.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .images import to_gray
from .inference import EmotionRecognizer, Face, draw_faces


@dataclass
class FrameResult:
    faces: list[Face]
    frame_ms: float
    smoothed_emotion: str | None = None     # label of the largest face, smoothed over recent frames


@dataclass
class FramePipeline:
    recognizer: EmotionRecognizer
    smooth_frames: int = 8                   # average probabilities over this many recent frames
    _history: deque = field(default_factory=lambda: deque(maxlen=8))

    def __post_init__(self):
        self._history = deque(maxlen=max(1, self.smooth_frames))

    def process(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, FrameResult]:
        t0 = time.perf_counter()
        gray = to_gray(frame_bgr)
        boxes = self.recognizer.detector.detect(gray)
        faces = self.recognizer.classify_boxes(gray, boxes)
        smoothed = None
        if faces:
            largest = max(faces, key=lambda f: f.box[2] * f.box[3])
            self._history.append(np.array([largest.probabilities[c] for c in self.recognizer.class_names]))
            mean = np.mean(self._history, axis=0)
            smoothed = self.recognizer.class_names[int(mean.argmax())]
        else:
            self._history.clear()
        out = draw_faces(frame_bgr, faces, copy=False)
        return out, FrameResult(faces, (time.perf_counter() - t0) * 1000, smoothed)
