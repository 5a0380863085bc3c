"""EmotionRecognizer on a real trained run: loading, faces in a real photo, batch classification."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from fer_core.data.images import read_image_file
from fer_core.model.saving import load_model_safe
from fer_core.runs import store
from fer_core.serve.detectors import box_iou
from fer_core.serve.recognizer import EmotionRecognizer, draw_faces

pytestmark = pytest.mark.slow

PHOTO = "2008_001009.jpg"


@pytest.fixture(scope="module")
def rec(tiny_run) -> EmotionRecognizer:
    return EmotionRecognizer.from_run(tiny_run)


def _hand_boxes(photos, name):
    """Face boxes drawn by hand in the dlib example's training.xml, as (x, y, w, h)."""
    xml = (photos / "training.xml").read_text(encoding="latin-1")
    block = re.search(rf"<image file='{re.escape(name)}'.*?</image>", xml, re.S).group(0)
    return [(int(l), int(t), int(w), int(h)) for t, l, w, h in
            re.findall(r"<box top='(\d+)' left='(\d+)' width='(\d+)' height='(\d+)'", block)]


def test_from_run_loads_the_runs_model_and_classes(rec, tiny_run):
    info = store.read_json(tiny_run / "run.json")
    assert rec.class_names == info["class_names"] and len(rec.class_names) == 7
    assert rec.input_size == 48 and rec.engine == "keras"


def test_analyze_finds_the_faces_in_a_real_photo(rec, photos):
    img = read_image_file(photos / PHOTO)
    faces = rec.analyze(img)
    truth = _hand_boxes(photos, PHOTO)
    assert len(truth) == 2 and len(faces) >= 1
    # every hand-boxed face is found, and every found box is one of them
    for t in truth:
        assert max(box_iou(f.box, t) for f in faces) > 0.4, (t, [f.box for f in faces])
    for f in faces:
        assert max(box_iou(f.box, t) for t in truth) > 0.4
        assert sum(f.probabilities.values()) == pytest.approx(1, abs=1e-4)
        assert f.emotion == max(f.probabilities, key=f.probabilities.get)
    drawn = draw_faces(img, faces)
    assert drawn.shape == img.shape and not np.array_equal(drawn, img)


def test_classify_a_batch_of_crops(rec, tiny_run, ckplus):
    files = sorted(ckplus.glob("*/*.png"))[::97][:10]
    crops = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in files])
    assert crops.shape == (len(files), 48, 48)
    probs = rec.classify(crops)
    assert probs.shape == (len(files), len(rec.class_names))
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5) and (probs >= 0).all()
    # the same faces in every accepted form give the same answer, and the model's own
    assert np.allclose(rec.classify(crops[..., None].astype(np.float32)), probs, atol=1e-6)
    bgr = [cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) for c in crops]
    assert np.allclose(rec.classify(bgr), probs, atol=1e-5)
    model = load_model_safe(tiny_run / "model.keras")
    assert np.allclose(np.asarray(model(crops[..., None].astype(np.float32), training=False)), probs, atol=1e-5)
    # larger crops are resized to the model's input
    big = [cv2.resize(c, (96, 96)) for c in crops]
    assert rec.classify(big).shape == probs.shape
    assert rec.classify([]).shape == (0, len(rec.class_names))


def test_from_run_without_a_model_says_so(tmp_path):
    store.update_run(tmp_path, status="failed")
    with pytest.raises(FileNotFoundError, match="model.keras"):
        EmotionRecognizer.from_run(tmp_path)


def test_a_model_released_from_the_app_cache_is_collected_cycles_and_all(default_run, monkeypatch):
    """The app freezes every object alive after a model loads (no gc walk of TensorFlow on every click); a
    model dropped from its cache must not stay frozen for good: the cache's release hook frees it."""
    import gc
    import weakref

    from fer_core.model import kerasenv
    from pages import _common
    _common.get_recognizer.clear()             # models other tests left in the app's cache go first
    hooks = []
    monkeypatch.setattr(kerasenv, "collect_released", lambda released: hooks.append(type(released).__name__))
    rec = _common.get_recognizer(str(default_run), store.model_stamp(default_run))
    rec.cycle = rec                             # as Keras objects hold: freed only by the collector
    gone = weakref.ref(rec)
    del rec
    try:
        _common.get_recognizer.clear()          # the cache lets go and calls its release hook
        assert hooks == ["EmotionRecognizer"] and gone() is not None, "frozen: reference counting alone cannot free it"
        monkeypatch.undo()
        kerasenv.collect_released(None, delay=0.0).join(10)
        assert gone() is None
    finally:
        gc.unfreeze()
