"""BlazeFace on real photos and real faces: the boxes a user sees, stable numbering, and eye alignment."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import CKPLUS, PHOTOS, need
from fer_core.serve.align import face_input
from fer_core.serve.blazeface import BlazeFaceDetector, reading_order
from fer_core.serve.recognizer import EmotionRecognizer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detector():
    return BlazeFaceDetector()


def on_canvas(face: np.ndarray, angle: float) -> np.ndarray:
    up = cv2.resize(face, (144, 144), interpolation=cv2.INTER_CUBIC)
    canvas = cv2.copyMakeBorder(up, 72, 72, 72, 72, cv2.BORDER_REPLICATE)
    m = cv2.getRotationMatrix2D((144, 144), angle, 1.0)
    return cv2.warpAffine(canvas, m, (288, 288), borderMode=cv2.BORDER_REPLICATE)


def test_no_face_on_the_dogs_and_every_face_on_a_group_photo(detector):
    dogs = cv2.imread(str(need(PHOTOS) / "dogs.jpg"))
    assert detector.detect_faces(dogs) == []
    group = cv2.imread(str(PHOTOS / "2008_002079.jpg"))
    faces = detector.detect_faces(group)
    assert len(faces) >= 5
    for f in faces:
        x, y, w, h = f.box
        assert 0 <= x and 0 <= y and x + w <= group.shape[1] and y + h <= group.shape[0]
        left, right = f.eyes      # both eyes inside the upper half of the face's box
        assert x <= left[0] < right[0] <= x + w and y <= left[1] <= y + 0.6 * h and y <= right[1] <= y + 0.6 * h


def test_reading_order_is_rows_then_left_to_right_whatever_the_input_order():
    boxes = [(300, 12, 40, 40), (10, 100, 40, 40), (150, 5, 40, 40), (200, 110, 40, 40), (20, 15, 40, 40)]
    expected = [(20, 15, 40, 40), (150, 5, 40, 40), (300, 12, 40, 40), (10, 100, 40, 40), (200, 110, 40, 40)]
    for seed in range(5):
        shuffled = [boxes[i] for i in np.random.default_rng(seed).permutation(len(boxes))]
        assert reading_order(shuffled) == expected


def _level_crop(detector, canvas):
    face = max(detector.detect_faces(canvas), key=lambda f: f.box[2])
    from fer_core.serve.align import eye_angle
    return face, face_input(canvas, face.box, 48, eye_angle(*face.eyes)), face_input(canvas, face.box, 48, 0.0)


@pytest.mark.parametrize("angle", [-25, 20])
def test_alignment_turns_a_tilted_face_back_upright(detector, angle):
    """A CK+ face turned by `angle`: its aligned crop matches the upright face's crop far better than the
    crop as found does, and the eyes it measured were tilted by about that angle."""
    face = cv2.imread(str(sorted(need(CKPLUS).glob("happy/*.png"))[3]), cv2.IMREAD_GRAYSCALE)
    _, upright, _ = _level_crop(detector, on_canvas(face, 0))
    found, aligned, as_found = _level_crop(detector, on_canvas(face, angle))
    from fer_core.serve.align import eye_angle
    assert eye_angle(*found.eyes) == pytest.approx(-angle, abs=8)     # counter-clockwise turn: eyes at -angle
    corr = lambda a, b: float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])  # noqa: E731
    assert corr(aligned, upright) > 0.7              # the detector's box and keypoints are a few pixels noisy
    assert corr(aligned, upright) > corr(as_found, upright) + 0.2


def test_recognizer_numbers_faces_in_reading_order_and_aligns(tiny_run):
    rec = EmotionRecognizer.from_run(tiny_run, BlazeFaceDetector())
    photo = cv2.imread(str(need(PHOTOS) / "2008_004176.jpg"))
    faces = rec.analyze(photo)
    assert [f.box for f in faces] == [f.box for f in reading_order(faces)]
    assert all(f.framed for f in faces) and any(abs(f.angle) > 0.5 for f in faces)
    assert [f.box for f in rec.analyze(photo)] == [f.box for f in faces]       # the same numbering every time
    for f in faces:
        assert set(f.probabilities) == set(rec.class_names)
