"""The webcam page's pieces that need no Streamlit: ICE server settings, the frame callback, live stats.

streamlit-webrtc calls the frame callback on its own worker thread, never the page's;
results travel to the page through a queue.Queue (thread-safe, and the page can block on it).
"""

from __future__ import annotations

import json
import math
import os
import queue
import sys
import time
from collections import deque
from dataclasses import dataclass

from fer_core.errors import UserError
from fer_core.serve.video import FramePipeline


class IceConfigError(UserError, ValueError):
    """FER_ICE_SERVERS or the ice_servers secret is not a usable list of ICE servers."""


def load_srtp_safely() -> None:
    """Import pylibsrtp (aiortc's SRTP) so that it cannot crash a process that already loaded TensorFlow.

    pylibsrtp's binary carries its own OpenSSL and exports its symbols; imported after TensorFlow,
    its calls bind to TensorFlow's BoringSSL copies and `srtp_init()` segfaults, killing the whole
    Streamlit server (e.g. Analyze visited before Webcam). RTLD_DEEPBIND makes the library use its
    own symbols first. Call this before importing streamlit_webrtc; harmless when already imported.
    """
    if "pylibsrtp" in sys.modules:
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | getattr(os, "RTLD_DEEPBIND", 0))   # Linux only; macOS needs nothing
    try:
        import pylibsrtp  # noqa: F401
    except ImportError:    # streamlit-webrtc will say what is missing
        pass
    finally:
        sys.setdlopenflags(flags)


def parse_ice_servers(value) -> list[dict]:
    """A JSON string or a list of {"urls": ..., "username"?, "credential"?} -> that list, checked.

    An empty list (the default) means host candidates only: enough on localhost or one LAN.
    """
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise IceConfigError(f"ICE servers must be a JSON list, e.g. "
                                 f'[{{"urls": "stun:stun.l.google.com:19302"}}] ({e})') from None
    if not isinstance(value, (list, tuple)):
        raise IceConfigError("ICE servers must be a list of {\"urls\": ...} objects.")
    servers = []
    for s in value:
        s = dict(s) if hasattr(s, "keys") else s
        if not isinstance(s, dict) or not s.get("urls"):
            raise IceConfigError(f"each ICE server needs \"urls\" (e.g. \"turn:host:3478\"); got {s!r}.")
        servers.append(s)
    return servers


@dataclass
class FrameReport:
    """What the page shows under the video; one per processed frame."""
    frame: int               # processed frames since START
    time: float              # time.monotonic() when it was done
    faces: int
    emotion: str | None      # smoothed emotion of the largest face
    frame_ms: float
    profile: str = ""        # the calibration profile that read the largest face ("" = the model alone)


def put_latest(q: queue.Queue, item) -> None:
    """Put without ever blocking the video thread: when the page lags behind, drop the oldest report."""
    while True:
        try:
            q.put_nowait(item)
            return
        except queue.Full:
            try:
                q.get_nowait()
            except queue.Empty:
                pass


@dataclass
class CaptureSlot:
    """Where the page puts a guided calibration (fer_core.profiles.capture.GuidedCapture) for the frame
    callback to feed; None while not calibrating. It outlives the callback, which settings changes rebuild."""
    capture: object = None


def make_frame_callback(pipeline: FramePipeline, reports: queue.Queue, slot: CaptureSlot | None = None):
    """av.VideoFrame -> av.VideoFrame with boxes and labels drawn; a FrameReport goes to `reports`.

    While a calibration sits in `slot`, it gets each frame as it came from the camera (the drawing below
    writes into the frame) with the faces found in it, and its prompt is drawn on the video, where the
    user is looking.
    """
    import av
    count = [0]

    def callback(frame: "av.VideoFrame") -> "av.VideoFrame":
        img = frame.to_ndarray(format="bgr24")
        capture = slot.capture if slot is not None else None
        clean = img.copy() if capture is not None else None
        out, result = pipeline.process(img)
        count[0] += 1
        largest = max(result.faces, key=lambda f: f.box[2] * f.box[3]) if result.faces else None
        put_latest(reports, FrameReport(count[0], time.monotonic(), len(result.faces), result.smoothed_emotion,
                                        result.frame_ms, getattr(largest, "profile", "") or ""))
        if capture is not None:
            capture.feed(time.monotonic(), clean, [f.box for f in result.faces])
            draw_prompt(out, capture.snapshot())
        return av.VideoFrame.from_ndarray(out, format="bgr24")   # streamlit-webrtc copies pts/time_base

    return callback


def draw_prompt(img, state) -> None:
    """The calibration's prompt and countdown in a band across the top of the video."""
    import cv2
    if state.done:
        text = "All shots taken"
    elif state.phase == "countdown":
        text = f"Show {state.emotion}  {math.ceil(state.countdown_left)}"
    else:
        text = f"Show {state.emotion}  {state.counts.get(state.emotion, 0)}/{state.shots_per_emotion}"
    scale = max(img.shape[1], 320) / 640
    cv2.rectangle(img, (0, 0), (img.shape[1], int(36 * scale)), (40, 40, 40), -1)
    cv2.putText(img, text, (int(10 * scale), int(26 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale,
                (255, 255, 255), max(1, int(round(2 * scale))), cv2.LINE_AA)


class LiveStats:
    """Frames per second over the last few seconds, from the reports the page receives."""

    def __init__(self, window_s: float = 3.0):
        self.window_s = window_s
        self._seen: deque = deque()
        self.last: FrameReport | None = None

    def add(self, r: FrameReport) -> None:
        self.last = r
        self._seen.append((r.time, r.frame))
        while self._seen and r.time - self._seen[0][0] > self.window_s:
            self._seen.popleft()

    @property
    def fps(self) -> float:
        if len(self._seen) < 2:
            return 0.0
        (t0, f0), (t1, f1) = self._seen[0], self._seen[-1]
        return (f1 - f0) / (t1 - t0) if t1 > t0 else 0.0

    def line(self) -> str:
        r = self.last
        if r is None:
            return "Waiting for the first frame…"
        profile = f" (profile: {r.profile})" if r.profile and r.emotion else ""
        return (f"Processed frames: {r.frame} · {self.fps:.1f} fps · faces: {r.faces} · "
                f"emotion: {r.emotion or '—'}{profile} · {r.frame_ms:.0f} ms per frame")
