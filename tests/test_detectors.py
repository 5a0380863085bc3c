"""The default face detector on real pictures: close-ups, a photo with no face, small faces in a large photo,
and one box per face where the tiled search sees a face in two windows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import FER2013, PHOTOS, need
from fer_core.serve import face_search
from fer_core.serve.blazeface import BlazeFaceDetector, Detection
from fer_core.serve.detectors import box_iou, make_detector
from fer_core.serve.face_search import FaceSearch, merge, tiling_factor, window_starts

pytestmark = pytest.mark.slow

GROUP = "2008_002079.jpg"         # six people, faces 37-52 px tall in a 500x375 photo


@pytest.fixture(scope="module")
def detector():
    return make_detector()        # what the app uses by default


def upscaled_faces(n: int) -> list[np.ndarray]:
    """FER2013 PrivateTest faces as a user's face crops: 48 px upscaled to 256, no margin."""
    files = sorted(need(FER2013).glob("test/*/PrivateTest_*"))[::97][:n]
    faces = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    return [cv2.cvtColor(cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
            for f in faces]


def centred(box, side: int = 256) -> bool:
    x, y, w, h = box
    return abs(x + w / 2 - side / 2) < side / 4 and abs(y + h / 2 - side / 2) < side / 4 and w >= side / 4


def test_the_default_detector_finds_the_face_in_face_crops_where_one_pass_does_not(detector):
    crops = upscaled_faces(30)
    single = BlazeFaceDetector()
    ours = [[f.box for f in detector.detect_faces(c)] for c in crops]
    before = [[f.box for f in single.detect_faces(c)] for c in crops]
    assert sum(any(centred(b) for b in boxes) for boxes in ours) >= 29, ours
    assert sum(len(boxes) for boxes in ours) <= 31                       # one face each, not several
    assert sum(any(centred(b) for b in boxes) for boxes in before) < 20  # what the close-up look adds
    face = detector.detect_photo(crops[0])                                # the photo path too, with eyes
    assert len(face) == 1 and centred(face[0].box)
    (lx, ly), (rx, ry) = face[0].eyes
    x, y, w, h = face[0].box
    assert x <= lx < rx <= x + w and y <= min(ly, ry) and max(ly, ry) <= y + 0.6 * h


def test_no_face_on_the_dogs_photo_by_any_path(detector):
    dogs = cv2.imread(str(need(PHOTOS) / "dogs.jpg"))
    assert detector.detect_faces(dogs) == []
    assert detector.detect_photo(dogs) == []
    small = cv2.resize(dogs, (256, 256), interpolation=cv2.INTER_AREA)       # a dog 'close-up' too
    assert detector.detect_faces(small) == [] and detector.detect_photo(small) == []


def group_on_canvas(face_height: float, at=(1700, 900), size=(3000, 2000)):
    """The group photo shrunk so its faces are about `face_height` px, pasted on a grey 6-MP canvas."""
    from bench.common import face_boxes
    photo = cv2.imread(str(need(PHOTOS) / GROUP))
    truth = face_boxes()[GROUP]
    f = face_height / np.median([b[3] for b in truth])
    small = cv2.resize(photo, (int(photo.shape[1] * f), int(photo.shape[0] * f)), interpolation=cv2.INTER_AREA)
    canvas = np.full((size[1], size[0], 3), 120, np.uint8)
    x, y = at
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas, [(x + bx * f, y + by * f, bw * f, bh * f) for bx, by, bw, bh in truth]


def found(boxes, truth) -> int:
    return sum(any(box_iou(b, t) >= 0.3 for b in boxes) for t in truth)


def test_small_faces_in_a_large_photo_are_found_on_the_photo_path_only(detector):
    canvas, truth = group_on_canvas(40)
    photo = [f.box for f in detector.detect_photo(canvas)]
    assert found(photo, truth) >= len(truth) - 1, (photo, truth)
    # the photo has unlabelled people far in its background, and a lamp: at most one box that is no drawn face
    assert sum(not any(box_iou(b, t) >= 0.3 for t in truth) for b in photo) <= 1, photo
    calls = []
    real = detector._full.detect_faces
    detector._full.detect_faces = lambda im: calls.append(im.shape) or real(im)
    try:
        detector.detect_faces(canvas)           # the webcam/video path: no tiling, a few model calls at most
    finally:
        del detector._full.detect_faces
    assert len(calls) == 1, calls
    strict = make_detector(min_size=100)        # the minimum face size setting still holds
    assert strict.detect_photo(canvas) == []


def test_a_face_across_a_window_edge_gives_one_box():
    """A face where two tiled windows meet is seen by both (whole in both, or cut in one): one box."""
    width, height = 3000, 2000
    k = tiling_factor(width, height)
    step = round(face_search.WINDOW * (1 - face_search.OVERLAP))
    starts = window_starts(width // k, face_search.WINDOW, step)
    edge, next_start = (starts[0] + face_search.WINDOW) * k, starts[1] * k      # in the photo's pixels
    tom = cv2.imread(str(need(PHOTOS) / "Tom_Cruise_avp_2014_4.jpg"))
    face = cv2.resize(tom[190:740, 15:565], (110, 110), interpolation=cv2.INTER_AREA)
    search = FaceSearch()
    for x in ((edge + next_start) // 2 - 55, edge - 55, next_start - 55):   # whole in both; cut by one, by the other
        page = np.full((height, width, 3), 120, np.uint8)
        page[700:810, x:x + 110] = face
        boxes = [f.box for f in search.detect_photo(page)]
        assert len(boxes) == 1, (x, boxes)
        bx, by, bw, bh = boxes[0]
        assert x <= bx + bw / 2 <= x + 110 and 700 <= by + bh / 2 <= 810


def test_merge_keeps_the_best_box_of_each_face():
    eyes = np.zeros((6, 2))
    a = Detection((100, 100, 50, 50), 0.9, eyes)
    b = Detection((104, 98, 52, 50), 0.8, eyes)         # the same face, seen in another window
    c = Detection((100, 120, 50, 28), 0.7, eyes)        # its lower half, cut by a window edge
    d = Detection((300, 100, 50, 50), 0.65, eyes)       # another face
    assert merge([c, d, b, a]) == [a, d]


# ---------------------------------------------------------------- declared abilities
def test_every_detector_declares_its_abilities_and_has_what_it_declares():
    from fer_core.serve.detectors import DETECTORS
    for name in DETECTORS:
        d = make_detector(name)
        abilities = {a: getattr(type(d), a) for a in ("gives_keypoints", "tracks_near_box", "takes_detect_width")}
        assert all(isinstance(v, bool) for v in abilities.values()), (name, abilities)
        assert callable(d.detect)
        assert not abilities["gives_keypoints"] or (callable(d.detect_faces) and callable(d.detect_photo)), name
        assert not abilities["tracks_near_box"] or callable(d.detect_near), name


def test_the_webcam_pipeline_makes_no_second_detector_or_thread_for_one_that_searches_every_frame():
    from types import SimpleNamespace

    from fer_core.serve.video import FramePipeline
    pipe = FramePipeline(SimpleNamespace(detector=make_detector()), background_detect=True)   # as the Webcam page
    assert pipe._executor is None and pipe._bg_detector is None
    pipe.close()
    haar = FramePipeline(SimpleNamespace(detector=make_detector("haar")), background_detect=True)
    assert haar._executor is not None and haar._bg_detector is not haar.recognizer.detector   # its own cascade
    haar.close()
