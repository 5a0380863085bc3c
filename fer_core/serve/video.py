"""Per-frame pipeline (webcam and video files): detect, classify all faces in one batch, smooth labels, draw.

Kept separate from the pages so it can be benchmarked and tested without a browser.

A detector with keypoints (BlazeFace, the default) searches every frame: it takes a few ms on a
640x480 frame, and its eye keypoints level each face. `FaceIds` gives each face an id that follows
it from frame to frame (the box it overlaps most in the frame before).

With the Haar cascade, face detection is the slow step of a frame, so the full-frame search runs every
`detect_every` frames; in between, each face is re-found in a small region around its
last box (`detect_near`, a few ms). A face not re-found there is dropped; if fewer than
half are re-found (a cut, a new scene) the same frame gets a full detection at once, so
boxes never go stale; a face that newly enters waits at most `detect_every - 1` frames. detect_every=1 detects
on the whole frame every time. The full search runs on a copy downscaled to `detect_width`
(320: a webcam face is ~100-250 px of a 640x480 frame, still >= 24 px there); boxes and
crops stay at full resolution.

With `background_detect=True` (the webcam page) the full search never runs on the frame
path at all: it runs on a worker thread (the second core) on a copy of a recent frame, and
its faces are merged in when it finishes, while every frame only follows faces. That takes
the 15-30 ms full-search spikes out of the frame time; a new face appears a few frames later.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from fer_core.data.images import to_gray
from fer_core.serve.detectors import box_iou
from fer_core.serve.recognizer import EmotionRecognizer, Face, draw_faces


@dataclass
class FrameResult:
    faces: list[Face]
    frame_ms: float
    smoothed_emotion: str | None = None     # label of the largest face, smoothed over recent frames


@dataclass
class FaceIds:
    """A face keeps its id while its box overlaps its box in the previous frame (IoU >= min_iou)."""
    min_iou: float = 0.3
    _last: list = field(default_factory=list)        # [(id, box)] of the previous frame
    _next: int = 1

    def assign(self, faces: list[Face]) -> list[int]:
        pairs = sorted(((box_iou(f.box, b), i, fid) for i, f in enumerate(faces) for fid, b in self._last),
                       reverse=True)
        ids: dict[int, int] = {}
        taken = set()
        for iou, i, fid in pairs:
            if iou >= self.min_iou and i not in ids and fid not in taken:
                ids[i] = fid
                taken.add(fid)
        for i in range(len(faces)):
            if i not in ids:
                ids[i], self._next = self._next, self._next + 1
        self._last = [(ids[i], f.box) for i, f in enumerate(faces)]
        return self.current

    @property
    def current(self) -> list[int]:
        """The ids of the last frame's faces, in that frame's order."""
        return [fid for fid, _ in self._last]


@dataclass
class FramePipeline:
    recognizer: EmotionRecognizer
    smooth_frames: int = 8                   # average probabilities over this many recent frames
    detect_every: int = 3                    # full-frame face search every N frames; follow faces in between
    detect_width: int = 320                  # the full search runs on the frame downscaled to this longer side
    background_detect: bool = False          # full search on a worker thread; frames only follow faces (for a
                                             # detector that tracks near a box and gives no keypoints; one that
                                             # gives keypoints searches every frame, and no thread is made)
    _history: deque = field(default_factory=lambda: deque(maxlen=8))
    _boxes: list = field(default_factory=list)
    _since_detect: int = 0
    closed: bool = False                     # close() was called: the background search is stopped

    def __post_init__(self):
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1 (got {self.detect_every})")
        self._history = deque(maxlen=max(1, self.smooth_frames))
        self._search = None          # the running background search (a Future), if any
        self._searched_once = False
        self._bg_detector = self._executor = None
        detector = self.recognizer.detector
        if self.background_detect and detector.tracks_near_box and not detector.gives_keypoints:
            # its own cascade: one OpenCV CascadeClassifier must not run in two threads at once
            self._bg_detector = dataclasses.replace(detector) if dataclasses.is_dataclass(detector) else detector
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face-search")

    def _full_search(self, gray: np.ndarray, detector=None) -> list[tuple[int, int, int, int]]:
        detector = detector or self.recognizer.detector
        if detector.takes_detect_width:
            return detector.detect(gray, detect_width=self.detect_width)
        return detector.detect(gray)

    def close(self) -> None:
        """Stop the background search thread (the session ended, or its settings changed)."""
        self.closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def find_faces(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Boxes for this frame: a full detection, or the last faces followed to where they are now."""
        detector = self.recognizer.detector
        near = detector.detect_near if detector.tracks_near_box else None
        if self._executor is not None:
            return self._find_faces_background(gray, near)
        follow = self.detect_every > 1 and near is not None and self._boxes and self._since_detect < self.detect_every
        if follow:
            moved = [b for b in (near(gray, b) for b in self._boxes) if b is not None]
            if len(moved) * 2 >= len(self._boxes):      # most faces still there: follow them
                self._since_detect += 1
                self._boxes = moved
                return moved
        self._boxes = self._full_search(gray)
        self._since_detect = 1
        return self._boxes

    def _find_faces_background(self, gray, near) -> list[tuple[int, int, int, int]]:
        if not self._searched_once:              # the very first frame: search here, so faces show at once
            self._searched_once = True
            self._boxes = self._full_search(gray)
            self._since_detect = 1
            return self._boxes
        # A face not re-found keeps its last box until the search running beside us says whether it is
        # still there (a few frames): dropping it at once makes small faces flicker in and out.
        moved = [near(gray, b) for b in self._boxes]
        lost = any(m is None for m in moved)
        followed = [m or b for m, b in zip(moved, self._boxes)]
        if self._search is not None and self._search.done():
            found = self._search.result()        # from a frame a few frames ago: a face there may have moved
            self._search = None
            # the search's faces, at where they are now; plus faces we still follow that it missed (the
            # cascade's answer flickers between frames, and a face re-found this frame is surely there)
            refound = [m for m in moved if m is not None]
            boxes = [next((t for t in refound if box_iou(t, f) > 0.3), None) or near(gray, f) or f for f in found]
            self._boxes = boxes + [t for t in refound if not any(box_iou(t, b) > 0.3 for b in boxes)]
            self._since_detect = 0
        else:
            self._boxes = followed
        self._since_detect += 1
        if self._search is None and (self._since_detect >= self.detect_every or lost or not self._boxes):
            self._search = self._executor.submit(self._full_search, gray.copy(), self._bg_detector)
        return self._boxes

    def process(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, FrameResult]:
        t0 = time.perf_counter()
        gray = to_gray(frame_bgr)
        if self.recognizer.detector.gives_keypoints:     # fast enough to search every frame
            faces = self.recognizer.classify_found(gray, self.recognizer.find_faces(frame_bgr))
        else:
            faces = self.recognizer.classify_boxes(gray, self.find_faces(gray))
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
