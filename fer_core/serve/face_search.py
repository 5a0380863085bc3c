"""The default face detector: BlazeFace asked the way each kind of picture needs.

One full-range pass over the whole (letterboxed) image finds the faces of an ordinary frame. Two
kinds of picture defeat it, and each gets a second look:

- A close-up (a face crop, a selfie): a face filling the frame is bigger than anything the full-range
  model's anchors were trained on, so it answers nothing. When the frame pass finds no face, or the
  picture is about face-sized, the short-range model (made for a face near the camera) looks at the
  picture with a grey border, which gives the face the margin that model expects.
- A large photo (photo path only, `detect_photo`): letterboxed to 192 px, a 40-px face of a 4000-px
  photo is 2 px. The photo is shrunk once to a finer scale and searched in overlapping 192-px windows,
  so a small face is 8 px or more where the model sees it; the number of windows is capped, so a
  12-MP photo stays fast (its smallest face found grows with its size instead).

The passes' boxes are merged by score: a box overlapping a better one (IoU over `MERGE_IOU`), or lying
mostly inside it (a face cut by a window's edge), is the same face. A window's boxes that touch its
inner edges are dropped for the same reason: the overlap shows that face whole in a neighbour.
The webcam and video path (`detect_faces`) never tiles: a frame has a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from fer_core.serve.blazeface import BlazeFaceDetector, Detection, reading_order

MERGE_IOU = 0.3
INSIDE = 0.6                 # a box with this share of its area inside a better box is that face again
CLOSE_UP_SIDE = 400          # a picture this small (longer side, px) gets the close-up look as well
CLOSE_UP_PADS = (0.25, 0.5)  # grey border on each edge, as a share of the longer side, tried in turn
GREY = (128, 128, 128)
WINDOW = 192                 # the full-range model's input side: windows are cut at its scale
TILE_FROM = 1000             # photos whose longer side reaches this get the tiled search
FACE_IN_WINDOW = 8           # px: the smallest face the model sees reliably in its input
MIN_TILED_FACE = 20          # px of the photo: the tiled search looks no finer than this
MAX_WINDOWS = 36             # cap on windows per photo (each is one ~2-3 ms model call)
OVERLAP = 0.25               # share of a window shared with its neighbour (> the largest face it must see whole)


def same_face(a, b) -> bool:
    """Two (x, y, w, h) boxes of one face: they overlap (IoU), or one lies mostly inside the other."""
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a, area_b = a[2] * a[3], b[2] * b[3]
    union = area_a + area_b - inter
    if not inter or not union:
        return False
    return inter / union >= MERGE_IOU or inter / min(area_a, area_b) >= INSIDE


def merge(detections: list[Detection]) -> list[Detection]:
    """One box per face from several passes: the best-scoring box of each group of boxes of one face."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        if not any(same_face(d.box, k.box) for k in kept):
            kept.append(d)
    return kept


def _shifted(d: Detection, dx: float, dy: float, scale: float) -> Detection:
    """A detection found in a shifted, rescaled copy, in the original image's pixels."""
    x, y, w, h = d.box
    box = (int(round(x / scale + dx)), int(round(y / scale + dy)), int(round(w / scale)), int(round(h / scale)))
    return Detection(box, d.score, d.keypoints / scale + np.array([dx, dy]))


def _clip(d: Detection, width: int, height: int) -> Detection | None:
    x, y, w, h = d.box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return Detection((x0, y0, x1 - x0, y1 - y0), d.score, d.keypoints)


def window_starts(length: int, window: int, step: int) -> list[int]:
    """Window origins covering 0..length, the last one flush with the end."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window, step))
    return starts + [length - window]


def tiling_factor(width: int, height: int) -> int | None:
    """The whole number the tiled search divides a photo's sides by, or None when one pass suffices.

    As fine as MIN_TILED_FACE asks, but coarse enough that the windows stay within MAX_WINDOWS. A
    whole number keeps the one full-size resize on OpenCV's fast area-averaging path.
    """
    if max(width, height) < TILE_FROM:
        return None
    step = round(WINDOW * (1 - OVERLAP))
    k = max(1, int(np.ceil(MIN_TILED_FACE / FACE_IN_WINDOW)))
    while max(width, height) / k > WINDOW:
        n = len(window_starts(width // k, WINDOW, step)) * len(window_starts(height // k, WINDOW, step))
        if n <= MAX_WINDOWS:
            return k
        k += 1
    return None


@dataclass
class FaceSearch:
    """BlazeFace full range on the frame, the short-range model for close-ups, windows for large photos."""

    gives_keypoints: ClassVar[bool] = True       # the abilities fer_core.serve.detectors.FaceDetector declares
    tracks_near_box: ClassVar[bool] = False
    takes_detect_width: ClassVar[bool] = False

    min_score: float = 0.6
    min_size: int = 0                        # drop faces smaller than this many pixels (0 = keep all)
    num_threads: int = 2
    _full: BlazeFaceDetector = field(default=None, repr=False)
    _short: BlazeFaceDetector = field(default=None, repr=False)

    def __post_init__(self):
        self._full = BlazeFaceDetector(min_score=self.min_score, num_threads=self.num_threads)
        self._short = BlazeFaceDetector(min_score=self.min_score, num_threads=self.num_threads, model="short")

    def __deepcopy__(self, memo):      # a copy for another thread gets interpreters of its own
        return FaceSearch(self.min_score, self.min_size, self.num_threads)

    def close_up(self, image: np.ndarray) -> list[Detection]:
        """The short-range model on the picture with a grey border; the first border that finds a face wins.

        It sees 128 px, so the picture is shrunk to CLOSE_UP_SIDE first: a large frame costs no more.
        """
        height, width = image.shape[:2]
        scale = min(1.0, CLOSE_UP_SIDE / max(height, width))
        small = image if scale == 1 else cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        for pad in CLOSE_UP_PADS:
            m = int(round(pad * max(small.shape[:2])))
            padded = cv2.copyMakeBorder(small, m, m, m, m, cv2.BORDER_CONSTANT,
                                        value=GREY if small.ndim == 3 else GREY[0])
            found = [_shifted(d, -m / scale, -m / scale, scale) for d in self._short.detect_faces(padded)]
            found = [c for c in (_clip(d, width, height) for d in found) if c is not None]
            if found:
                return found
        return []

    def tiles(self, image: np.ndarray) -> list[Detection]:
        """Faces of a large photo: one pass over a shrunk copy, then its overlapping model-sized windows."""
        height, width = image.shape[:2]
        k = tiling_factor(width, height)
        if k is None:
            return self._full.detect_faces(image)
        small = cv2.resize(image, (width // k, height // k), interpolation=cv2.INTER_AREA)
        scale = (width // k) / width
        found = [_shifted(d, 0, 0, scale) for d in self._full.detect_faces(small)]
        sh, sw = small.shape[:2]
        step = round(WINDOW * (1 - OVERLAP))
        for y in window_starts(sh, WINDOW, step):
            for x in window_starts(sw, WINDOW, step):
                window = small[y:y + WINDOW, x:x + WINDOW]
                for d in self._full.detect_faces(window):
                    if not _touches_inner_edge(d.box, x, y, window.shape, small.shape):
                        found.append(_shifted(d, x / scale, y / scale, scale))
        return found

    def _keep(self, faces: list[Detection]) -> list[Detection]:
        return reading_order([f for f in merge(faces) if min(f.box[2], f.box[3]) >= self.min_size])

    def detect_faces(self, image: np.ndarray) -> list[Detection]:
        """Faces in a frame (webcam, video, photo): the frame pass, and the close-up look where it may help."""
        faces = self._full.detect_faces(image)
        if not faces or max(image.shape[:2]) <= CLOSE_UP_SIDE:
            faces = faces + self.close_up(image)
        return self._keep(faces)

    def detect_photo(self, image: np.ndarray) -> list[Detection]:
        """Faces in a photo: as in a frame, plus the tiled search that finds small faces in a large photo."""
        faces = self.tiles(image)
        if not faces or max(image.shape[:2]) <= CLOSE_UP_SIDE:
            faces = faces + self.close_up(image)
        return self._keep(faces)

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [f.box for f in self.detect_faces(gray)]


def _touches_inner_edge(box, x: int, y: int, window_shape, image_shape, margin: int = 2) -> bool:
    """A box cut by a window edge that is not the image's edge (the face continues in the next window)."""
    bx, by, bw, bh = box
    wh, ww = window_shape[:2]
    ih, iw = image_shape[:2]
    return ((bx <= margin and x > 0) or (by <= margin and y > 0)
            or (bx + bw >= ww - margin and x + ww < iw) or (by + bh >= wh - margin and y + wh < ih))
