"""Photos in, labelled faces out: what the Analyze page does, without Streamlit, so it can be tested.

One bad photo must never stop the others, so `analyze_photo` turns every ImageError
into a PhotoResult with `error` set instead of raising.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import cv2
import numpy as np
import pandas as pd

from fer_core.data.images import ImageError, decode_image, to_gray
from fer_core.serve.detectors import FaceDetector
from fer_core.serve.recognizer import EmotionRecognizer, Face, draw_faces

# What the uploader accepts (Pillow reads them all; see images.decode_image).
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"]   # a GIF: its first frame


@dataclass
class PhotoResult:
    name: str
    image: np.ndarray | None = None          # BGR, upright
    faces: list[Face] = field(default_factory=list)
    annotated: np.ndarray | None = None      # BGR with boxes and labels
    whole_image: bool = False                # the whole photo was classified as one face
    error: str | None = None                 # a user-facing message when the file could not be used

    @property
    def ok(self) -> bool:
        return self.error is None


def with_detector(recognizer: EmotionRecognizer, detector: FaceDetector) -> EmotionRecognizer:
    """A view of `recognizer` with another detector; the model is shared, the cached original is untouched.

    The app caches one recognizer per model for every user, so per-user detector settings
    must not be written into it.
    """
    view = copy.copy(recognizer)
    view.detector = detector
    return view


def analyze_photo(recognizer: EmotionRecognizer, data: bytes, name: str, whole_image: bool = False) -> PhotoResult:
    """Decode (safely), detect and classify one uploaded photo. whole_image: skip detection."""
    try:
        image = decode_image(data, name)
    except ImageError as e:
        return PhotoResult(name, error=str(e))
    faces = recognizer.analyze(image, detect=not whole_image)
    return PhotoResult(name, image, faces, draw_faces(image, faces), whole_image)


def face_crops(result: PhotoResult, margin: float = 0.1) -> list[np.ndarray]:
    """Each face's crop (BGR), with a little margin so the overlay shows the face's edge."""
    return [EmotionRecognizer.crop(result.image, f.box, margin) for f in result.faces]


def faces_table(results: list[PhotoResult], class_names: list[str]) -> pd.DataFrame:
    """One row per face of every photo: photo, face number, emotion, confidence, box, every class's probability."""
    rows = []
    for r in results:
        for i, f in enumerate(r.faces, start=1):
            x, y, w, h = f.box
            rows.append({"photo": r.name, "face": i, "emotion": f.emotion, "confidence": round(f.confidence, 4),
                         "x": x, "y": y, "width": w, "height": h, "whole_photo": r.whole_image,
                         **{c: round(f.probabilities.get(c, 0.0), 4) for c in class_names}})
    columns = ["photo", "face", "emotion", "confidence", "x", "y", "width", "height", "whole_photo", *class_names]
    return pd.DataFrame(rows, columns=columns)


def probabilities_matrix(result: PhotoResult, class_names: list[str]) -> tuple[list[str], list[str], list[list[float]]]:
    """(face labels "1".."N" in the numbering of the annotated image, every class, probabilities) for a
    faces x emotions heatmap: one row per face, however many faces, every class in every row."""
    labels = [str(i) for i in range(1, len(result.faces) + 1)]
    return labels, list(class_names), [[f.probabilities.get(c, 0.0) for c in class_names] for f in result.faces]


def encode_png(image_bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image_bgr)
    if not ok:   # pragma: no cover - cv2 encodes any uint8 BGR image
        raise ImageError("could not encode the annotated image as PNG")
    return buf.tobytes()


def to_rgb(image_bgr: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """For st.image: RGB, optionally downscaled so a 12-MP photo is not sent to the browser whole."""
    img = image_bgr
    if max_side and max(img.shape[:2]) > max_side:
        s = max_side / max(img.shape[:2])
        img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img.ndim == 3 else img


def model_inputs(recognizer: EmotionRecognizer, result: PhotoResult) -> np.ndarray:
    """The faces exactly as the model saw them, (N, S, S, 1) gray pixels, for Grad-CAM."""
    return recognizer.model_inputs(to_gray(result.image), result.faces)
