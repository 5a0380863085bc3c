"""Face detectors behind a small interface, chosen by name from a registry.

A detector is anything with `detect(image) -> list[(x, y, w, h)]` in the image's pixels that declares
its abilities (`FaceDetector`): callers read the declarations, never probe for methods or types.
  gives_keypoints    `detect_faces(image) -> list[Detection]` (boxes with eye keypoints, for alignment; quick
                     enough for every frame) and `detect_photo(image)` (as thorough as it gets, for still photos)
  tracks_near_box    `detect_near(gray, box) -> box | None` (re-find one face in a small region), which the
                     webcam pipeline uses to follow faces between full detections
  takes_detect_width `detect(gray, detect_width=N)` searches a copy downscaled to N pixels (the webcam's
                     frames need less than a photo)

  blazeface   MediaPipe's BlazeFace (the default): the full-range model on the frame, the short-range model
              for close-ups, and a tiled search for small faces in large photos (fer_core/serve/face_search.py)
  haar        OpenCV's frontal-face Haar cascade (frontal faces only; kept as an option)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Protocol

import cv2
import numpy as np


def box_iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


class FaceDetector(Protocol):
    """What every detector offers (`detect`) and declares (its abilities, as class attributes)."""
    gives_keypoints: ClassVar[bool]
    tracks_near_box: ClassVar[bool]
    takes_detect_width: ClassVar[bool]

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]: ...


DETECTORS: dict[str, Callable] = {}      # name -> factory(min_size, sensitivity), filled by @register_detector
DEFAULT_DETECTOR = "blazeface"


def register_detector(name: str):
    def add(factory: Callable) -> Callable:
        DETECTORS[name] = factory
        return factory
    return add


def make_detector(name: str = DEFAULT_DETECTOR, min_size: int = 20, sensitivity: float = 0.5) -> FaceDetector:
    """The detector called `name`; sensitivity 0..1 (higher finds more faces, and more false ones)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector '{name}'; choose one of: {', '.join(DETECTORS)}")
    return DETECTORS[name](min_size, min(max(sensitivity, 0.0), 1.0))


@register_detector("blazeface")
def _blazeface(min_size: int, sensitivity: float):
    from fer_core.serve.face_search import FaceSearch
    return FaceSearch(min_score=round(0.8 - 0.4 * sensitivity, 3), min_size=min_size)   # 0.5 -> 0.6


@register_detector("haar")
def _haar(min_size: int, sensitivity: float):
    return HaarFaceDetector(min_size=max(min_size, 12), sensitivity=sensitivity)


@dataclass
class HaarFaceDetector:
    """OpenCV's shipped frontal-face Haar cascade.

    Detection runs on a copy downscaled so its longer side is at most `detect_width`
    (faces are still found; it is the slow step), and boxes are mapped back to full resolution.
    min_size is in full-resolution pixels; sensitivity 0..1 lowers the cascade's min_neighbors.
    """

    gives_keypoints: ClassVar[bool] = False
    tracks_near_box: ClassVar[bool] = True
    takes_detect_width: ClassVar[bool] = True

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

    def detect(self, gray: np.ndarray, detect_width: int | None = None) -> list[tuple[int, int, int, int]]:
        """Faces in full-resolution pixels. detect_width overrides the field for this call (the webcam
        pipeline searches a smaller copy: a 640x480 frame's faces are large, and a frame has ~30 ms)."""
        h, w = gray.shape[:2]
        scale = min(1.0, (detect_width or self.detect_width) / max(h, w))
        small = cv2.resize(gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else gray
        min_side = max(12, int(self.min_size * scale))
        boxes = self._cascade.detectMultiScale(small, scaleFactor=self.scale_factor,
                                               minNeighbors=self.min_neighbors, minSize=(min_side, min_side))
        out = []
        for (x, y, bw, bh) in (boxes if len(boxes) else []):
            out.append((int(x / scale), int(y / scale), int(bw / scale), int(bh / scale)))
        return out

    def detect_near(self, gray: np.ndarray, box: tuple[int, int, int, int],
                    margin: float = 0.4) -> tuple[int, int, int, int] | None:
        """Re-find one face close to where it was: the cascade on that region only.

        The region is the old box grown by `margin` on each side, downscaled so the face is
        about 64 px, and only face sizes 0.7x..1.5x the old one are tried: a few ms instead of
        a full-frame search. Returns the box nearest the old centre, or None if the face is gone.
        """
        x, y, w, h = box
        H, W = gray.shape[:2]
        m = int(round(margin * max(w, h)))
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
        if x1 - x0 < 12 or y1 - y0 < 12:
            return None
        roi = gray[y0:y1, x0:x1]
        scale = min(1.0, 64 / max(w, h, 1))
        if scale < 1:
            roi = cv2.resize(roi, (max(1, int((x1 - x0) * scale)), max(1, int((y1 - y0) * scale))),
                             interpolation=cv2.INTER_AREA)
        side = max(w, h) * scale
        lo, hi = max(12, int(0.7 * side)), max(13, int(1.5 * side))
        found = self._cascade.detectMultiScale(roi, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               minSize=(lo, lo), maxSize=(hi, hi))
        if not len(found):
            return None
        cx, cy = (x + w / 2 - x0) * scale, (y + h / 2 - y0) * scale
        bx, by, bw, bh = min(found, key=lambda b: (b[0] + b[2] / 2 - cx) ** 2 + (b[1] + b[3] / 2 - cy) ** 2)
        return (int(x0 + bx / scale), int(y0 + by / scale), int(bw / scale), int(bh / scale))
