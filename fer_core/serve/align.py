"""Face crops framed as the training faces were: a square around the detector's box, turned so the eyes
are level (from the detector's eye keypoints), resampled straight to the model's input size.

The framing constants are measured, not guessed: `python -m bench.framing` runs the detector on
FER2013 PublicTest faces placed on a larger canvas and prints how the detector's box sits in a
training face (its side as a fraction of the face image, and its centre's offset).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

FRAME_SCALE = 1.14       # a training face's side = 1.14 x the detector's box side (bench.framing)
FRAME_SHIFT_Y = -0.02    # the face image's centre sits 2% of its side above the box centre (bench.framing)


def eye_angle(left_eye, right_eye) -> float:
    """Degrees to rotate the image by so the eyes (as seen in the image, left then right) are level."""
    dx, dy = right_eye[0] - left_eye[0], right_eye[1] - left_eye[1]
    return math.degrees(math.atan2(dy, dx))


def face_input(gray: np.ndarray, box, size: int, angle: float = 0.0) -> np.ndarray:
    """The (size, size) uint8 face the model sees: the framed square around `box`, turned by `angle` degrees."""
    x, y, w, h = box
    side = max(w, h) * FRAME_SCALE
    cx, cy = x + w / 2, y + h / 2 + FRAME_SHIFT_Y * side
    scale = size / side
    if scale < 0.5:   # a big face: shrink its neighbourhood with area averaging first (no aliasing)
        r = int(math.ceil(side * 0.75))
        x0, y0 = max(0, int(cx) - r), max(0, int(cy) - r)
        roi = gray[y0:y0 + 2 * r, x0:x0 + 2 * r]
        f = min(1.0, 2 * scale)
        small = cv2.resize(roi, (max(1, round(roi.shape[1] * f)), max(1, round(roi.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
        return face_input(small, ((x - x0) * f, (y - y0) * f, w * f, h * f), size, angle)
    m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    m[:, 2] += (size / 2 - cx, size / 2 - cy)
    return cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
