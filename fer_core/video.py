"""Per-frame webcam pipeline: detect, classify all faces in one batch, smooth labels, draw.

Kept separate from the webcam page so it can be benchmarked and tested without a browser.

Face detection is the slow step of a frame, so the full-frame search runs every
`detect_every` frames; in between, each face is re-found in a small region around its
last box (`detect_near`, a few ms). A face not re-found there is dropped; if fewer than
half are re-found (a cut, a new scene) the same frame gets a full detection at once, so
boxes never go stale; a face that newly enters waits at most `detect_every - 1` frames. detect_every=1 detects
on the whole frame every time. The full search runs on a copy downscaled to `detect_width`
(320: a webcam face is ~100-250 px of a 640x480 frame, still >= 24 px there); boxes and
crops stay at full resolution.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .faces import HaarFaceDetector
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
    detect_every: int = 3                    # full-frame face search every N frames; follow faces in between
    detect_width: int = 320                  # the full search runs on the frame downscaled to this longer side
    _history: deque = field(default_factory=lambda: deque(maxlen=8))
    _boxes: list = field(default_factory=list)
    _since_detect: int = 0

    def __post_init__(self):
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1 (got {self.detect_every})")
        self._history = deque(maxlen=max(1, self.smooth_frames))

    def find_faces(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Boxes for this frame: a full detection, or the last faces followed to where they are now."""
        detector = self.recognizer.detector
        near = getattr(detector, "detect_near", None)
        follow = self.detect_every > 1 and near is not None and self._boxes and self._since_detect < self.detect_every
        if follow:
            moved = [b for b in (near(gray, b) for b in self._boxes) if b is not None]
            if len(moved) * 2 >= len(self._boxes):      # most faces still there: follow them
                self._since_detect += 1
                self._boxes = moved
                return moved
        if isinstance(detector, HaarFaceDetector):
            self._boxes = detector.detect(gray, detect_width=self.detect_width)
        else:
            self._boxes = detector.detect(gray)
        self._since_detect = 1
        return self._boxes

    def process(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, FrameResult]:
        t0 = time.perf_counter()
        gray = to_gray(frame_bgr)
        boxes = self.find_faces(gray)
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
