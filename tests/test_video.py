"""The webcam frame pipeline with the Haar detector: following faces between searches, and the search on a
background thread (BlazeFace, the default, searches every frame and needs neither)."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from fer_core.serve.detectors import box_iou
from fer_core.serve.video import FramePipeline

pytestmark = pytest.mark.slow

PHOTOS = ("2008_001322.jpg", "2009_004587.jpg")


@pytest.fixture(scope="module")
def rec(tiny_run):
    from fer_core.serve.detectors import make_detector
    from fer_core.serve.recognizer import EmotionRecognizer
    return EmotionRecognizer.from_run(tiny_run, make_detector("haar", 30))


def frames_of(photos, name, n):
    """A 640x480 'camera' looking at a photo, drifting a few pixels per frame."""
    img = cv2.resize(cv2.imread(str(photos / name)), (640, 480), interpolation=cv2.INTER_AREA)
    for k in range(n):
        m = np.float32([[1, 0, 6 * np.sin(k / 7)], [0, 1, 4 * np.cos(k / 11)]])
        yield cv2.warpAffine(img, m, (640, 480), borderMode=cv2.BORDER_REFLECT)


def matched(boxes, reference) -> int:
    return sum(any(box_iou(b, r) > 0.4 for r in reference) for b in boxes)


def full_search(rec, frame):
    return FramePipeline(rec, detect_every=1).find_faces(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))


def test_following_faces_between_searches_keeps_the_faces_a_search_finds(rec, photos):
    pipe = FramePipeline(rec, detect_every=3)
    for frame in frames_of(photos, PHOTOS[0], 30):
        _, result = pipe.process(frame)
        reference = full_search(rec, frame)
        assert reference
        assert matched([f.box for f in result.faces], reference) >= len(reference) - 1


def test_background_search_stays_off_the_frame_path_and_finds_new_faces(rec, photos):
    pipe = FramePipeline(rec, detect_every=3, background_detect=True)
    callers = []
    for det in (rec.detector, pipe._bg_detector):
        real = det.detect

        def spy(gray, *a, _real=real, **kw):
            callers.append(threading.current_thread().name)
            return _real(gray, *a, **kw)
        det.detect = spy
    try:
        seen = []
        for i, frame in enumerate(list(frames_of(photos, PHOTOS[0], 20)) + list(frames_of(photos, PHOTOS[1], 40))):
            _, result = pipe.process(frame)
            seen.append((i, [f.box for f in result.faces], frame))
            time.sleep(0.01)                      # a camera delivers frames over time
    finally:
        pipe.close()
        for det in (rec.detector, pipe._bg_detector):
            del det.detect
    assert callers[0] == threading.main_thread().name          # the very first frame is searched at once
    assert len(callers) > 3 and all(c.startswith("face-search") for c in callers[1:]), callers[:10]
    first = seen[0]
    assert matched(first[1], full_search(rec, first[2])) >= 1
    # after the cut to the second photo, every face a full search finds there is shown, frame after frame
    for _, boxes, frame in seen[-10:]:
        reference = full_search(rec, frame)
        assert reference and matched(reference, boxes) == len(reference), (boxes, reference)


def test_blazeface_frames_keep_their_face_ids_and_level_the_eyes(tiny_run, photos):
    """The default detector's frame path: every frame searched, faces aligned, ids kept across frames."""
    from fer_core.serve.recognizer import EmotionRecognizer
    from fer_core.serve.video import FaceIds
    rec = EmotionRecognizer.from_run(tiny_run)
    pipe, ids = FramePipeline(rec), FaceIds()
    seen = []
    for frame in frames_of(photos, PHOTOS[0], 15):
        _, result = pipe.process(frame)
        assert result.faces and all(f.framed for f in result.faces)
        seen.append(ids.assign(result.faces))
    assert all(sorted(s) == sorted(seen[0]) for s in seen)          # the same faces keep the same ids
