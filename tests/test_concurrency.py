"""Many sessions at once on the committed default model (with its model.tflite): the app caches one
recognizer per model for every session, so its LiteRT interpreters are called from many threads at once.
Each thread must get the answer it would get alone, for its own photo, and no error."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fer_core.data.images import decode_image
from fer_core.runs import defaults

pytestmark = pytest.mark.slow

THREADS = 8
ROUNDS = 12


@pytest.fixture(scope="module")
def default_recognizer():
    if not (defaults.DEFAULT_RUN / "model.tflite").is_file():
        pytest.skip(f"the committed default model's model.tflite is absent in {defaults.DEFAULT_RUN}")
    from fer_core.serve.recognizer import EmotionRecognizer
    rec = EmotionRecognizer.from_run(defaults.DEFAULT_RUN)
    assert rec.engine == "litert", "the default model should run on its LiteRT export, as in the app"
    return rec


def photo_images(photos) -> list[np.ndarray]:
    files = sorted(p for p in photos.glob("*.jpg") if p.name != "dogs.jpg")
    assert len(files) >= THREADS, f"need {THREADS} photos with faces in {photos}"
    return [decode_image(p.read_bytes(), p.name) for p in files[:THREADS]]


def probabilities(faces) -> np.ndarray:
    return np.array([[f.probabilities[c] for c in sorted(f.probabilities)] for f in faces]).reshape(len(faces), -1)


def run_threads(work) -> list[str]:
    errors: list[str] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except Exception as e:       # noqa: BLE001  (every failure is reported, none may escape the thread)
            errors.append(f"thread {i}: {e!r}")
    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_eight_threads_share_the_default_recognizer_like_sessions(default_recognizer, photos):
    """As the pages do: the cached recognizer with a detector of each session's own (annotate.with_detector)."""
    from fer_core.serve.annotate import with_detector
    from fer_core.serve.detectors import make_detector
    images = photo_images(photos)
    alone = [probabilities(default_recognizer.analyze(im)) for im in images]
    assert sum(len(a) for a in alone) >= THREADS, "the photos should hold faces"
    wrong: list[str] = []

    def session(i: int) -> None:
        rec = with_detector(default_recognizer, make_detector())
        for r in range(ROUNDS):
            got = probabilities(rec.analyze(images[i]))
            if got.shape != alone[i].shape or not np.allclose(got, alone[i], atol=1e-5):
                wrong.append(f"thread {i} round {r}: {got.shape} faces, alone {alone[i].shape}")
    errors = run_threads(session)
    assert not errors, errors[:3]
    assert not wrong, wrong[:3]


def test_eight_threads_share_one_detector_and_one_predict_function(default_recognizer, photos):
    """The recognizer's own detector (the CLI's and the benchmarks') and its classifier, shared by all threads."""
    images = photo_images(photos)
    alone = [probabilities(default_recognizer.analyze(im)) for im in images]
    crops = np.random.default_rng(0).uniform(0, 255, (THREADS, 3, 48, 48, 1)).astype(np.float32)
    alone_crops = [default_recognizer.classify(c) for c in crops]
    wrong: list[str] = []

    def caller(i: int) -> None:
        for r in range(ROUNDS):
            got = probabilities(default_recognizer.analyze(images[i]))
            if got.shape != alone[i].shape or not np.allclose(got, alone[i], atol=1e-5):
                wrong.append(f"thread {i} round {r}: photo answer differs from its answer alone")
            if not np.allclose(default_recognizer.classify(crops[i]), alone_crops[i], atol=1e-6):
                wrong.append(f"thread {i} round {r}: crops answer differs from its answer alone")
    errors = run_threads(caller)
    assert not errors, errors[:3]
    assert not wrong, wrong[:3]
