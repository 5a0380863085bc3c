"""EmotionRecognizer: detect faces, classify them in one batch, return boxes + probabilities.

The app, the CLI and the benchmarks all go through this class. Per-frame work avoids
`model.predict` (~60 ms of fixed overhead per call): we call a traced function directly,
or a LiteRT interpreter when the run has an exported `model.tflite`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .faces import FaceDetector, HaarFaceDetector
from .images import to_gray
from .kerasenv import backend, keras
from .runstore import read_json

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def make_predict_fn(model):
    """A fast `x -> probabilities` for numpy batches (N, S, S, 1) float32."""
    if backend() == "tensorflow":
        import tensorflow as tf
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        return lambda x: fn(np.asarray(x, dtype=np.float32)).numpy()
    if backend() == "jax":
        import jax
        fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]

        def predict(x):
            x = np.asarray(x, dtype=np.float32)
            n = len(x)
            bucket = next((b for b in BATCH_BUCKETS if b >= n), n)   # few shapes -> few compilations
            if bucket > n:
                x = np.concatenate([x, np.zeros((bucket - n, *x.shape[1:]), np.float32)])
            return np.asarray(fn(tv, ntv, x))[:n]
        return predict
    return lambda x: keras.ops.convert_to_numpy(model(np.asarray(x, dtype=np.float32), training=False))


def make_tflite_fn(path: Path, num_threads: int = 2):
    """A LiteRT model as `x -> probabilities`.

    Resizing an interpreter's input re-plans all its buffers (milliseconds), which a webcam
    with 1, 2, 3 faces would pay on every change. So a batch is padded up to the next size in
    BATCH_BUCKETS and each bucket keeps its own interpreter, made on first use: at most
    len(BATCH_BUCKETS) of them, so memory stays bounded however many frames go through.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        Interpreter = tf.lite.Interpreter
    content = Path(path).read_bytes()       # read once; the file may be replaced later
    interpreters: dict[int, tuple] = {}

    def interpreter_for(n: int):
        if n not in interpreters:
            interp = Interpreter(model_content=content, num_threads=num_threads)
            inp = interp.get_input_details()[0]
            interp.resize_tensor_input(inp["index"], [n, *inp["shape"][1:]])
            interp.allocate_tensors()
            interpreters[n] = (interp, interp.get_input_details()[0], interp.get_output_details()[0])
        return interpreters[n]

    def run(x: np.ndarray) -> np.ndarray:
        n = len(x)
        bucket = next(b for b in BATCH_BUCKETS if b >= n)
        if bucket > n:
            x = np.concatenate([x, np.zeros((bucket - n, *x.shape[1:]), np.float32)])
        interp, inp, out = interpreter_for(bucket)
        if inp["dtype"] == np.int8:          # fully-int8 inputs (our exports keep float32 inputs)
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y[:n].copy()

    def predict(x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        top = BATCH_BUCKETS[-1]
        if len(x) == 0:
            return np.zeros((0, *interpreter_for(1)[2]["shape"][1:]), np.float32)
        return np.concatenate([run(x[i:i + top]) for i in range(0, len(x), top)])
    return predict


@dataclass
class Face:
    box: tuple[int, int, int, int]          # x, y, w, h in the image's pixels
    emotion: str
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return self.probabilities.get(self.emotion, 0.0)

    def to_dict(self) -> dict:
        return {"box": list(self.box), "emotion": self.emotion, "confidence": round(self.confidence, 4),
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()}}


class EmotionRecognizer:
    def __init__(self, model, class_names: list[str], detector: FaceDetector | None = None,
                 predict_fn=None, run_dir: str | None = None, engine: str = "keras"):
        self.model = model
        self.class_names = list(class_names)
        self.detector = detector or HaarFaceDetector()
        self.input_size = int(model.input_shape[1]) if model is not None else 48
        self.predict_fn = predict_fn or make_predict_fn(model)
        self.run_dir = run_dir
        self.engine = engine
        # trace once now, so the first real frame does not pay for it
        self.predict_fn(np.zeros((1, self.input_size, self.input_size, 1), np.float32))

    @classmethod
    def from_run(cls, run_dir, detector: FaceDetector | None = None, prefer_tflite: bool = True):
        """Load a run's best model (safe mode), and its LiteRT export when present."""
        from .training import load_model_safe
        run_dir = Path(run_dir)
        model_path = run_dir / "model.keras"
        if not model_path.is_file():
            raise FileNotFoundError(f"{run_dir} has no model.keras (the run may have failed before its first epoch)")
        info = read_json(run_dir / "run.json", {}) or {}
        metrics = read_json(run_dir / "metrics.json", {}) or {}
        classes = info.get("class_names") or metrics.get("class_names")
        model = load_model_safe(model_path)
        if not classes:
            classes = [f"class_{i}" for i in range(model.output_shape[-1])]
        tfl = run_dir / "model.tflite"
        export_info = read_json(run_dir / "export.json", {}) or {}
        if prefer_tflite and tfl.is_file() and export_info.get("use_in_app", False):
            return cls(model, classes, detector, make_tflite_fn(tfl), str(run_dir), engine="litert")
        return cls(model, classes, detector, None, str(run_dir))

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
        """Probabilities (N, classes) for a batch of face crops, in one model call per 256 faces."""
        if isinstance(faces, np.ndarray) and faces.ndim == 4 and faces.shape[1:] == (self.input_size, self.input_size, 1):
            x = faces.astype(np.float32, copy=False)
        elif isinstance(faces, np.ndarray) and faces.ndim == 3 and faces.shape[1:] == (self.input_size, self.input_size):
            x = faces.astype(np.float32)[..., None]
        else:
            x = self.preprocess_faces(list(faces))
        if len(x) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return np.concatenate([self.predict_fn(x[i:i + 256]) for i in range(0, len(x), 256)])

    # -- detection + classification
    @staticmethod
    def crop(gray: np.ndarray, box, margin: float = 0.0) -> np.ndarray:
        x, y, w, h = box
        m = int(round(margin * w))
        H, W = gray.shape[:2]
        return gray[max(0, y - m):min(H, y + h + m), max(0, x - m):min(W, x + w + m)]

    def analyze(self, image_bgr: np.ndarray, detect: bool = True) -> list[Face]:
        """Every face in the image, boxed and labelled. detect=False: the whole image is one face."""
        gray = to_gray(image_bgr)
        boxes = self.detector.detect(gray) if detect else [(0, 0, gray.shape[1], gray.shape[0])]
        return self.classify_boxes(gray, boxes)

    def classify_boxes(self, gray: np.ndarray, boxes) -> list[Face]:
        if not boxes:
            return []
        probs = self.classify([self.crop(gray, b) for b in boxes])
        return [Face(tuple(int(v) for v in b), self.class_names[int(p.argmax())],
                     {c: float(v) for c, v in zip(self.class_names, p)}) for b, p in zip(boxes, probs)]


# ---------------------------------------------------------------- drawing
EMOTION_COLORS_BGR = {
    "angry": (40, 40, 220), "anger": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160),
    "happy": (0, 200, 255), "sad": (200, 120, 40), "sadness": (200, 120, 40), "surprise": (255, 200, 0),
    "neutral": (180, 180, 180), "contempt": (90, 90, 160),
}


def draw_faces(image_bgr: np.ndarray, faces: list[Face], copy: bool = True) -> np.ndarray:
    """Boxes and `emotion 87%` labels, scaled to the image so they stay readable on 12-MP photos."""
    img = image_bgr.copy() if copy else image_bgr
    scale = max(img.shape[:2]) / 800
    thick = max(1, int(round(2 * scale)))
    font = 0.6 * max(scale, 0.6)
    for i, f in enumerate(faces):
        x, y, w, h = f.box
        color = EMOTION_COLORS_BGR.get(f.emotion, (0, 255, 0))
        cv2.rectangle(img, (x, y), (x + w, y + h), color, thick)
        label = f"{i + 1}: {f.emotion} {f.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        ty = y - 4 if y - th - 8 > 0 else y + h + th + 4
        cv2.rectangle(img, (x, ty - th - 4), (x + tw + 4, ty + base - 2), color, -1)
        cv2.putText(img, label, (x + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)
    return img
