"""Video files: every face of every frame (or every Nth), an annotated copy, and one CSV row per face and frame.

Frames are streamed: read, analysed, written, dropped, so memory stays flat however long the video.
Reading is OpenCV's; writing is PyAV's (already installed with streamlit-webrtc), because OpenCV's wheels
cannot encode H.264 and browsers do not play its mp4v files: `.mp4` is written as H.264, `.webm` as VP8.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_core.errors import UserError
from fer_core.progress import Progress
from fer_core.serve.recognizer import EmotionRecognizer, Face, draw_faces
from fer_core.serve.video import FaceIds, FramePipeline

VIDEO_TYPES = ["mp4", "webm", "mov", "avi", "mkv", "m4v"]
MAX_VIDEO_BYTES = 500 * 1024 * 1024
MAX_VIDEO_SECONDS = 30 * 60
MAX_VIDEO_PIXELS = 3840 * 2160          # 4K: every frame is decoded and drawn at full size
CODECS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".webm": "libvpx", ".mkv": "libx264"}


class VideoError(UserError, ValueError):
    """A video that cannot be analysed; the message names the problem and what to do."""


@dataclass
class VideoInfo:
    path: str
    fps: float
    frames: int          # as the container says (an estimate for some formats)
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


@dataclass
class VideoSummary:
    info: VideoInfo
    frames_read: int = 0
    frames_analysed: int = 0
    face_rows: int = 0
    faces_seen: int = 0                  # distinct face ids
    warnings: list = field(default_factory=list)


def probe(path, name: str | None = None) -> VideoInfo:
    """Open a video and check it against the limits, reading its first frame; VideoError says what is wrong,
    naming the file as the user knows it (NAME: an upload is saved under a name of the app's own)."""
    p = Path(path)
    name = name or p.name
    if not p.is_file():
        raise VideoError(f"{p}: no such file.")
    size = p.stat().st_size
    if size == 0:
        raise VideoError(f"{name} is empty.")
    if size > MAX_VIDEO_BYTES:
        raise VideoError(f"{name} is {size / 2**20:.0f} MB; the limit is {MAX_VIDEO_BYTES // 2**20} MB. "
                         "Cut or compress it first.")
    info = _first_frame_info(p, name)
    if info.width * info.height > MAX_VIDEO_PIXELS:
        raise VideoError(f"{name} is {info.width}x{info.height} pixels; the limit is 3840x2160 (4K) or the same "
                         "number of pixels. Scale it down first.")
    if info.seconds > MAX_VIDEO_SECONDS:
        raise VideoError(f"{name} lasts {info.seconds / 60:.0f} minutes; the limit is "
                         f"{MAX_VIDEO_SECONDS // 60} minutes. Cut it into parts first.")
    return info


def _first_frame_info(p: Path, name: str) -> VideoInfo:
    """The frame rate, frame count and size, from the container and the first frame. A count the container
    gets wrong (negative or absurd, as for a photo renamed .mp4) is left unknown (0), not shown as a duration."""
    cap = cv2.VideoCapture(str(p))
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            raise VideoError(f"{name} could not be read as a video: it is not a video, it is damaged or "
                             f"truncated, or its codec is one OpenCV cannot decode. Use {', '.join(VIDEO_TYPES)} "
                             "with H.264, VP8/VP9 or MPEG-4 video.")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        fps = fps if 0 < fps < 1000 else 25.0
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0
        frames = int(frames) if 0 < frames < 1e9 else 0
        return VideoInfo(str(p), fps, frames, frame.shape[1], frame.shape[0])
    finally:
        cap.release()


class _Writer:
    """Annotated frames into an H.264 (.mp4) or VP8 (.webm) file through PyAV."""

    def __init__(self, path: Path, info: VideoInfo):
        import av
        from fractions import Fraction
        codec = CODECS.get(path.suffix.lower())
        if codec is None:
            raise VideoError(f"cannot write {path.name}: give the annotated video a .mp4 or .webm name.")
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream(codec, rate=Fraction(info.fps).limit_denominator(1001))
        self.stream.width, self.stream.height = info.width - info.width % 2, info.height - info.height % 2
        self.stream.pix_fmt = "yuv420p"

    def write(self, frame_bgr: np.ndarray) -> None:
        import av
        frame = av.VideoFrame.from_ndarray(frame_bgr[:self.stream.height, :self.stream.width], format="bgr24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class _Silent:
    """A stream that drops the progress lines (the app shows progress through the callback instead)."""

    def write(self, s):
        pass

    def flush(self):
        pass


def _csv_rows(frame_no: int, t: float, faces: list[Face], ids: list[int], classes: list[str]) -> list[list]:
    return [[frame_no, round(t, 3), fid, *f.box, f.emotion, round(f.confidence, 4),
             *[round(f.probabilities.get(c, 0.0), 4) for c in classes]] for f, fid in zip(faces, ids)]


def csv_header(classes: list[str]) -> list[str]:
    return ["frame", "time_s", "face_id", "x", "y", "width", "height", "emotion", "confidence",
            *[f"p_{c}" for c in classes]]


def analyze_video(path, recognizer: EmotionRecognizer, out_path=None, csv_path=None, every: int = 1,
                  progress_cb=None, stream=None, name: str | None = None) -> VideoSummary:
    """Stream a video through the recognizer; write the annotated copy and/or the CSV as it goes."""
    if every < 1:
        raise VideoError(f"every {every}: analyse every N-th frame with N >= 1.")
    info = probe(path, name)
    summary = VideoSummary(info)
    pipeline, face_ids = FramePipeline(recognizer, smooth_frames=1), FaceIds()
    writer = _Writer(Path(out_path), info) if out_path else None
    csv_file = open(csv_path, "w", newline="", encoding="utf-8") if csv_path else None
    rows = csv.writer(csv_file) if csv_file else None
    if rows:
        rows.writerow(csv_header(recognizer.class_names))
    prog = Progress(f"analysing {Path(path).name}", max(info.frames, 1), stream=stream or _Silent(),
                    callback=progress_cb)
    cap, faces, seen = cv2.VideoCapture(str(path)), [], set()
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if summary.frames_read % every == 0:
                _, result = pipeline.process(frame.copy())
                faces = result.faces
                ids = face_ids.assign(faces)
                seen.update(ids)
                summary.frames_analysed += 1
                if rows:
                    rows.writerows(_csv_rows(summary.frames_read, summary.frames_read / info.fps, faces, ids,
                                             recognizer.class_names))
                    summary.face_rows += len(faces)
            if writer:
                writer.write(draw_faces(frame, faces, copy=False, numbers=face_ids.current))
            summary.frames_read += 1
            prog.update()
    finally:
        cap.release()
        if writer:
            writer.close()
        if csv_file:
            csv_file.close()
    summary.faces_seen = len(seen)
    if info.frames and summary.frames_read < 0.9 * info.frames:
        summary.warnings.append(f"the video ended after {summary.frames_read} of the {info.frames} frames its "
                                "header announces: the file may be truncated.")
    return summary
