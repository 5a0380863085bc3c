"""EmotionRecognizer: detect faces, classify them in one batch, return boxes + probabilities.

The app, the CLI and the benchmarks all go through this class. Per-frame work avoids
`model.predict` (~60 ms of fixed overhead per call): we call a traced function directly,
or a LiteRT interpreter when the run has an exported `model.tflite`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_core.data.emotions import EMOTION_COLORS, color_bgr
from fer_core.data.images import to_gray
from fer_core.model.predict import make_predict_fn
from fer_core.model.temperature import apply_temperature
from fer_core.runs.run_model import RunModel
from fer_core.serve.align import eye_angle, face_input
from fer_core.serve.blazeface import reading_order
from fer_core.serve.detectors import FaceDetector, make_detector


@dataclass
class Face:
    box: tuple[int, int, int, int]          # x, y, w, h in the image's pixels
    emotion: str
    probabilities: dict[str, float] = field(default_factory=dict)
    angle: float = 0.0                      # degrees the face was turned to level its eyes (0 = not aligned)
    framed: bool = False                    # cropped with the training faces' framing (align.py), not the box
    profile: str = ""                       # name of the calibration profile that read this face ("" = none)

    @property
    def confidence(self) -> float:
        return self.probabilities.get(self.emotion, 0.0)

    def to_dict(self) -> dict:
        d = {"box": list(self.box), "emotion": self.emotion, "confidence": round(self.confidence, 4),
             "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()}}
        if self.profile:
            d["profile"] = self.profile
        return d


class EmotionRecognizer:
    def __init__(self, model, class_names: list[str], detector: FaceDetector | None = None,
                 predict_fn=None, run_dir: str | None = None, engine: str = "keras"):
        self.model = model
        self.class_names = list(class_names)
        self.detector = detector or make_detector()
        self.align = True                   # level the eyes where the detector gives eye keypoints
        self.input_size = int(model.input_shape[1]) if model is not None else 48
        self.predict_fn = predict_fn or make_predict_fn(model)
        self.run_dir = run_dir
        self.engine = engine
        self.temperature: float | None = None   # from the run's calibration.json; None: the model's own
        self.class_shift: list[float] | None = None   # its logit adjustment (rare emotions weighed up), if any
        self.profile = None                 # a calibration profile (fer_core.profiles), set by with_profile
        self.profile_scope = "largest"      # "largest": the profile reads the largest face; "all": every face
        # trace once now, so the first real frame does not pay for it
        self.predict_fn(np.zeros((1, self.input_size, self.input_size, 1), np.float32))

    @classmethod
    def from_run(cls, run_dir, detector: FaceDetector | None = None, prefer_tflite: bool = True):
        """A run's best model (safe mode), run on its LiteRT export where export.json allows it."""
        loaded = RunModel.load(run_dir, engine="app" if prefer_tflite else "keras")
        rec = cls(loaded.model, loaded.class_names, detector, loaded.predict_fn, str(run_dir), engine=loaded.engine)
        rec.temperature, rec.class_shift = loaded.temperature, loaded.class_shift
        return rec

    # -- classification
    def preprocess_faces(self, faces: list[np.ndarray]) -> np.ndarray:
        """Face crops (any size, gray or BGR) -> (N, S, S, 1) float32 pixels."""
        s = self.input_size
        out = np.empty((len(faces), s, s, 1), np.float32)
        for i, f in enumerate(faces):
            g = to_gray(f) if f.ndim == 3 else f
            if g.shape[:2] != (s, s):
                g = cv2.resize(g, (s, s), interpolation=cv2.INTER_AREA if g.shape[0] > s else cv2.INTER_LINEAR)
            out[i, :, :, 0] = g
        return out

    def classify(self, faces) -> np.ndarray:
        """Probabilities (N, classes) for a batch of face crops, in one model call per 256 faces, scaled by the
        run's fitted calibration where it has one: its logit adjustment and temperature (predict_fn itself gives
        the model's own)."""
        side = (self.input_size, self.input_size)
        if isinstance(faces, np.ndarray) and faces.ndim == 4 and faces.shape[1:] == (*side, 1):
            x = faces.astype(np.float32, copy=False)
        elif isinstance(faces, np.ndarray) and faces.ndim == 3 and faces.shape[1:] == side:
            x = faces.astype(np.float32)[..., None]
        else:
            x = self.preprocess_faces(list(faces))
        if len(x) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        probs = np.concatenate([self.predict_fn(x[i:i + 256]) for i in range(0, len(x), 256)])
        return apply_temperature(probs, self.temperature, self.class_shift)

    # -- detection + classification
    @staticmethod
    def crop(gray: np.ndarray, box, margin: float = 0.0) -> np.ndarray:
        x, y, w, h = box
        m = int(round(margin * w))
        H, W = gray.shape[:2]
        return gray[max(0, y - m):min(H, y + h + m), max(0, x - m):min(W, x + w + m)]

    def analyze(self, image_bgr: np.ndarray, detect: bool = True) -> list[Face]:
        """Every face in the image, boxed and labelled, in reading order. detect=False: the image is one face."""
        gray = to_gray(image_bgr)
        if not detect:
            return self.classify_boxes(gray, [(0, 0, gray.shape[1], gray.shape[0])])
        return self.classify_found(gray, self.find_faces(image_bgr, photo=True))

    def find_faces(self, image: np.ndarray, photo: bool = False) -> list[Face]:
        """Unclassified faces (box, and the angle that levels the eyes where the detector gives them).

        photo=True: a still photo, worth the detector's slower search for small faces (`detect_photo`);
        video frames keep the per-frame search.
        """
        if not self.detector.gives_keypoints:
            gray = to_gray(image) if image.ndim == 3 else image
            return [Face(tuple(int(v) for v in b), "") for b in reading_order(self.detector.detect(gray))]
        detect_faces = self.detector.detect_photo if photo else self.detector.detect_faces
        found = []
        for d in reading_order(detect_faces(image)):
            angle = eye_angle(*d.eyes) if self.align else 0.0
            found.append(Face(d.box, "", angle=angle, framed=True))
        return found

    def model_inputs(self, gray: np.ndarray, faces: list[Face]) -> np.ndarray:
        """The faces exactly as the model sees them: (N, S, S, 1) float32 pixels."""
        s = self.input_size
        crops = [face_input(gray, f.box, s, f.angle) if f.framed else self.crop(gray, f.box) for f in faces]
        return self.preprocess_faces(crops)

    # -- calibration profiles
    def embed(self, x: np.ndarray):
        """(embeddings, probabilities) of model inputs, from the Keras model (the layer before its classifier)."""
        from fer_core.profiles.embed import embed_fn_for
        return embed_fn_for(self.model)(x)

    def with_profile(self, profile, scope: str = "largest") -> "EmotionRecognizer":
        """A recognizer that reads with a profile; this one (often shared by sessions) stays as it is."""
        import copy
        if profile is None:
            return self
        from fer_core.profiles.profile import check_model
        check_model(profile, self.run_dir)
        if scope not in ("largest", "all"):
            raise ValueError(f"profile scope must be 'largest' or 'all', not {scope!r}")
        self.embed(np.zeros((1, self.input_size, self.input_size, 1), np.float32))   # traced once per model
        other = copy.copy(self)
        other.profile, other.profile_scope = profile, scope
        return other

    def _profiled_probs(self, x: np.ndarray, faces: list[Face]) -> np.ndarray:
        from fer_core.profiles.profile import apply_profile
        emb, raw = self.embed(x)
        probs = apply_temperature(raw, self.temperature, self.class_shift)   # the faces the profile does not read
        chosen = (list(range(len(faces))) if self.profile_scope == "all"
                  else [max(range(len(faces)), key=lambda i: faces[i].box[2] * faces[i].box[3])])
        probs[chosen] = apply_profile(self.profile, emb[chosen], raw[chosen])   # its rule was chosen on raw
        for i in chosen:
            faces[i].profile = self.profile.name
        return probs

    def classify_found(self, gray: np.ndarray, faces: list[Face]) -> list[Face]:
        if not faces:
            return []
        x = self.model_inputs(gray, faces)
        probs = self._profiled_probs(x, faces) if self.profile is not None else self.classify(x)
        for f, p in zip(faces, probs):
            f.emotion = self.class_names[int(p.argmax())]
            f.probabilities = {c: float(v) for c, v in zip(self.class_names, p)}
        return faces

    def classify_boxes(self, gray: np.ndarray, boxes) -> list[Face]:
        """Faces at given boxes, cropped as the box (a whole image, or boxes a tracker followed)."""
        return self.classify_found(gray, [Face(tuple(int(v) for v in b), "") for b in boxes])


# ---------------------------------------------------------------- drawing
EMOTION_COLORS_BGR = {name: color_bgr(name) for name in EMOTION_COLORS}   # from the one table in data.emotions


def draw_faces(image_bgr: np.ndarray, faces: list[Face], copy: bool = True,
               numbers: list[int] | None = None) -> np.ndarray:
    """Boxes and `N: emotion 87%` labels, scaled to the image so they stay readable on 12-MP photos.

    N is the face's number in reading order (or `numbers`, e.g. a video's face ids). A label sits above
    its box, or inside its top edge where there is no room above, and is kept inside the image.
    """
    img = image_bgr.copy() if copy else image_bgr
    scale = max(img.shape[:2]) / 800
    thick = max(1, int(round(2 * scale)))
    numbers = numbers if numbers is not None and len(numbers) == len(faces) else range(1, len(faces) + 1)
    for f, n in zip(faces, numbers):
        x, y, w, h = f.box
        color = color_bgr(f.emotion)
        cv2.rectangle(img, (x, y), (x + w, y + h), color, thick)
        mark = " *" if f.profile else ""            # read with a calibration profile (the pages say which)
        _label(img, f"{n}: {f.emotion} {f.confidence:.0%}{mark}", (x, y, w, h), color, scale, thick)
    return img


def _label(img: np.ndarray, text: str, box, color, scale: float, thick: int) -> None:
    """A filled label that fits the face: its font shrinks to the box's width in a crowd, and it stays on the image."""
    x, y, w, h = box
    font = 0.6 * max(scale, 0.6)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
    if tw > 1.6 * w:             # a small face in a crowd: a smaller label, so neighbours' labels do not overlap
        font *= max(0.45, 1.6 * w / tw)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
    H, W = img.shape[:2]
    ty = y - 4 if y - th - 8 > 0 else y + th + 6          # above the box, else inside its top edge
    tx = min(max(0, x), max(0, W - tw - 4))                # never cut by the image's right or left edge
    cv2.rectangle(img, (tx, ty - th - 4), (tx + tw + 4, ty + base - 2), color, -1)
    cv2.putText(img, text, (tx + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)
