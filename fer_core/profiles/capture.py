"""The guided "Calibrate to me" capture: which emotion to show, when to shoot, and the shots so far.

No Streamlit and no threads of its own: the webcam's frame callback feeds it frames and the boxes the
live pipeline already found (on streamlit-webrtc's worker thread), and the page reads `snapshot()` on its
own thread, so every method takes one lock. Time comes from the caller (the frames' timestamps), which
keeps the machine testable without a camera or a clock.

For each emotion in turn (neutral first, then the model's other classes in the model's order): a prompt
and a countdown that starts with the first frame it sees, so a user who presses START late still gets the
whole countdown; then k shots of the largest face, each when that face's box has stayed put over a few
frames (a blurred or half-turned face makes a poor prototype), a short gap apart so the shots are not one
frame k times. The first shot of a new emotion also waits until the face looks different from the last
emotion shot before it (most of its shots), over `steady_frames` frames in a row (one noisy frame is not a
change): a user who missed the prompt would otherwise give two emotions the same face. That wait ends after
`change_wait_s`, as some people's expressions differ only a little.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_core.data.emotions import canonical


@dataclass(frozen=True)
class CaptureSettings:
    shots: int = 3                    # k shots per emotion
    countdown_s: float = 3.0          # from the prompt to the first shot
    steady_frames: int = 4            # the box must stay put over this many consecutive frames...
    steady_tolerance: float = 0.15    # ...its centre and width moving less than this fraction of its width
    shot_gap_s: float = 0.4           # at least this long between two shots
    change_threshold: float = 0.25    # how different (0 = same) a new emotion's first shot must look...
    change_wait_s: float = 4.0        # ...unless the face has been held this long after the countdown
    margin: float = 0.35              # each shot keeps this much of the face's width around its box

    def __post_init__(self):
        if self.shots < 1 or self.steady_frames < 1:
            raise ValueError(f"shots and steady_frames must be at least 1 (got {self.shots}, {self.steady_frames})")
        if min(self.countdown_s, self.shot_gap_s, self.change_wait_s, self.steady_tolerance, self.margin) < 0:
            raise ValueError("the capture's times, tolerance and margin cannot be negative")


def capture_order(class_names) -> list[str]:
    """Neutral first (the face everyone starts from), then the model's other classes in its own order."""
    names = list(class_names)
    neutral = [c for c in names if canonical(c) == "neutral"]
    return neutral + [c for c in names if c not in neutral]


def largest_box(boxes):
    boxes = [tuple(int(v) for v in b) for b in boxes]
    return max(boxes, key=lambda b: b[2] * b[3]) if boxes else None


def is_steady(boxes, tolerance: float) -> bool:
    """True when every box's centre and width lie within `tolerance` x the newest box's width of it."""
    x, y, w, h = boxes[-1]
    cx, cy, lim = x + w / 2, y + h / 2, tolerance * max(w, 1)
    return all(abs(bx + bw / 2 - cx) <= lim and abs(by + bh / 2 - cy) <= lim and abs(bw - w) <= lim
               for bx, by, bw, bh in boxes)


SIGNATURE, SHIFT = 20, 2     # pixels of the signature patch; the shifts signature_distance allows either way


def face_signature(frame_bgr: np.ndarray, box) -> np.ndarray:
    """The face and a little around it as a small contrast-normalised gray patch: cheap, and blind to overall
    light changes."""
    x, y, w, h = box
    m = w // 8
    crop = frame_bgr[max(0, y - m):y + h + m, max(0, x - m):x + w + m]
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    patch = cv2.resize(gray, (SIGNATURE, SIGNATURE), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (patch - patch.mean()) / (patch.std() + 1e-6)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two signatures at the best of small shifts: a detector's box jumps by a tenth
    of the face between frames of a face that did not move, and that alone must not read as a new expression."""
    n, core = SIGNATURE - 2 * SHIFT, a[SHIFT:SIGNATURE - SHIFT, SHIFT:SIGNATURE - SHIFT]
    return float(min(np.mean(np.abs(core - b[dy:dy + n, dx:dx + n]))
                     for dy in range(2 * SHIFT + 1) for dx in range(2 * SHIFT + 1)))


def crop_with_margin(frame_bgr: np.ndarray, box, margin: float) -> np.ndarray:
    """The face with some context, as a copy: profile making finds and aligns the face in it again."""
    x, y, w, h = box
    m = int(round(margin * w))
    H, W = frame_bgr.shape[:2]
    return frame_bgr[max(0, y - m):min(H, y + h + m), max(0, x - m):min(W, x + w + m)].copy()


@dataclass(frozen=True)
class CaptureState:
    """What the page shows: a consistent copy, taken under the lock."""
    order: tuple
    shots_per_emotion: int
    emotion: str | None               # the emotion asked for now; None once every emotion has its shots
    phase: str                        # "countdown", "shooting" or "done"
    countdown_left: float             # seconds until shooting starts (0 while shooting)
    status: str                       # a short line for the user
    counts: dict = field(default_factory=dict)     # emotion -> shots taken
    crops: dict = field(default_factory=dict)      # emotion -> tuple of BGR crops, in the order taken
    version: int = 0                  # changes whenever a shot is taken or an emotion is cleared

    @property
    def done(self) -> bool:
        return self.emotion is None

    @property
    def prompt(self) -> str:
        return "All shots taken." if self.done else f"Show {self.emotion}"


class GuidedCapture:
    def __init__(self, class_names, settings: CaptureSettings | None = None):
        self.settings = settings or CaptureSettings()
        self.order = capture_order(class_names)
        if not self.order:
            raise ValueError("the model has no classes to calibrate")
        self._lock = threading.Lock()
        self._shots: dict[str, list[np.ndarray]] = {e: [] for e in self.order}
        self._pending: list[str] = list(self.order)
        self._boxes: deque = deque(maxlen=self.settings.steady_frames)
        self._started: float | None = None        # first frame of the current emotion's countdown
        self._last_shot_t = float("-inf")
        self._signatures: dict[str, list[np.ndarray]] = {e: [] for e in self.order}
        self._last_emotion: str | None = None      # the emotion of the last shot (the change guard's reference)
        self._changed_frames = 0                   # frames in a row that looked unlike that emotion's shots
        self._now: float | None = None
        self._status = "Waiting for the camera: press START."
        self._version = 0

    def feed(self, t: float, frame_bgr: np.ndarray, boxes) -> bool:
        """One frame at time `t` (seconds) with its face boxes (x, y, w, h); True when it took a shot."""
        with self._lock:
            self._now = t
            if not self._pending:
                return False
            box = largest_box(boxes)
            if box is None:
                self._boxes.clear()
                self._changed_frames = 0
            else:
                self._boxes.append(box)
            if self._started is None:
                self._started = t
            return self._maybe_shoot(t, frame_bgr, box)

    def _maybe_shoot(self, t: float, frame_bgr: np.ndarray, box) -> bool:
        s, emotion = self.settings, self._pending[0]
        shooting_since = self._started + s.countdown_s
        if t < shooting_since:
            self._status = f"Show {emotion}…"
            return False
        if box is None:
            self._status = "No face in view: look at the camera."
            return False
        if len(self._boxes) < s.steady_frames or not is_steady(self._boxes, s.steady_tolerance):
            self._status = "Hold still…"
            return False
        if t - self._last_shot_t < s.shot_gap_s:
            return False
        signature = face_signature(frame_bgr, box)
        if not self._shots[emotion] and not self._changed(signature, emotion) and t - shooting_since < s.change_wait_s:
            self._status = f"Show {emotion}: this still looks like your {self._last_emotion} shots."
            return False
        self._shots[emotion].append(crop_with_margin(frame_bgr, box, s.margin))
        self._signatures[emotion].append(signature)
        self._last_shot_t, self._last_emotion, self._changed_frames = t, emotion, 0
        self._version += 1
        self._status = f"Shot {len(self._shots[emotion])} of {s.shots} of {emotion}."
        if len(self._shots[emotion]) >= s.shots:
            self._pending.pop(0)
            self._started = None
        return True

    def _changed(self, signature: np.ndarray, emotion: str) -> bool:
        """True once the face has looked unlike the emotion shot before for steady_frames frames in a row.

        Unlike most of that emotion's shots (the median distance): one of them may have caught the start of the
        next expression, and that one alone must not hold the capture back."""
        reference = self._signatures.get(self._last_emotion) if self._last_emotion != emotion else None
        if not reference:
            return True
        distances = sorted(signature_distance(signature, r) for r in reference)
        if distances[len(distances) // 2] >= self.settings.change_threshold:
            self._changed_frames += 1
        else:
            self._changed_frames = 0
        return self._changed_frames >= self.settings.steady_frames

    def retake(self, emotion: str) -> None:
        """Drop one emotion's shots and ask for it again next (its countdown starts over)."""
        with self._lock:
            if emotion not in self._shots:
                raise ValueError(f"'{emotion}' is not one of this model's emotions ({', '.join(self.order)})")
            self._shots[emotion], self._signatures[emotion] = [], []
            if self._last_emotion == emotion:
                self._last_emotion = None
            if emotion in self._pending:
                self._pending.remove(emotion)
            self._pending.insert(0, emotion)
            self._started = None
            self._boxes.clear()
            self._version += 1
            self._status = f"Retaking {emotion}."

    def snapshot(self, now: float | None = None) -> CaptureState:
        """The state for display; `now` (same clock as feed's) makes the countdown tick between frames."""
        with self._lock:
            s, counts = self.settings, {e: len(v) for e, v in self._shots.items()}
            crops = {e: tuple(v) for e, v in self._shots.items()}
            if not self._pending:
                return CaptureState(tuple(self.order), s.shots, None, "done", 0.0, "All shots taken.",
                                    counts, crops, self._version)
            emotion, now = self._pending[0], now if now is not None else self._now
            left = s.countdown_s if self._started is None or now is None else \
                max(0.0, self._started + s.countdown_s - now)
            phase = "countdown" if left > 0 else "shooting"
            return CaptureState(tuple(self.order), s.shots, emotion, phase, left, self._status, counts, crops,
                                self._version)

    def shots(self) -> dict[str, list[np.ndarray]]:
        """Every emotion's crops (BGR uint8), as profile making takes them."""
        with self._lock:
            return {e: list(v) for e, v in self._shots.items() if v}
