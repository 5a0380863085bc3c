"""Side by side with the `fer` package: `python -m bench.vs_fer [RUN_DIR] [--quick]`.

`fer` (github.com/justinshenk/fer) ships its mini-Xception emotion model (Keras .hdf5 and a
quantized .tflite) and uses OpenCV's Haar cascade. It is NOT a dependency of the app; install
it for this benchmark only, without its heavy requirements (torch via facenet-pytorch,
moviepy, ffmpeg-python, matplotlib, opencv-contrib are not needed for images):

    pip install --no-deps fer tqdm requests pillow

(fer 25.10.3 imports pkg_resources, i.e. setuptools, which Python 3.11 venvs have; add
`setuptools` to the line in a venv that lacks it. To keep it out of the system Python:
`python -m venv --system-site-packages /tmp/ferbench && /tmp/ferbench/bin/pip install --no-deps fer
tqdm requests pillow`, then run this module with /tmp/ferbench/bin/python.)

Printed, in one run on the same frames:
  1. speed: the real photos at 640x480 through fer's FER.detect_emotions (its detector + its
     default LiteRT model) and through our photo pipeline (EmotionRecognizer.analyze + draw_faces:
     detector, alignment, model, drawing; every frame searched, no tracking), as frames/s and the
     ratio; plus our webcam FramePipeline for reference;
  2. face detection against the hand-drawn boxes of photos/training.xml + testing.xml
     (9 photos, 43 faces, full resolution): recall and precision of our detectors and fer's, a
     detection matching a hand-drawn box when IoU >= 0.3 (the issue's rule; 0.5 also printed;
     greedy, one-to-one); and the faces each reports on dogs.jpg (no face there).
Without fer installed, our half is printed and fer's lines say how to install it.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from bench.common import check_run, face_boxes, matched, parser, percentiles, photo_paths, print_machine, read_bgr

INSTALL = "pip install --no-deps fer tqdm requests pillow"


def load_fer():
    """fer's FER class with its defaults, or None (and why) when the package is not installed."""
    try:
        try:
            from fer import FER
        except ImportError:
            from fer.fer import FER
    except ImportError as e:
        return None, f"not installed ({e}); install it for this benchmark with: {INSTALL}"
    import warnings
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    return FER(), "fer " + getattr(__import__("fer"), "__version__", "?")


def detection_scores(detect, photos: dict, threshold: float) -> str:
    truth = face_boxes()
    tp = n_det = n_true = 0
    for name, img in photos.items():
        if name not in truth:
            continue
        boxes = [tuple(int(v) for v in b) for b in detect(img)]
        tp += len(matched(boxes, truth[name], threshold))
        n_det += len(boxes)
        n_true += len(truth[name])
    recall = tp / n_true if n_true else 0.0
    precision = tp / n_det if n_det else 0.0
    return f"recall {recall:.3f} ({tp}/{n_true}), precision {precision:.3f} ({tp}/{n_det})"


def print_detection(detectors: dict, photos: dict) -> None:
    for threshold in (0.3, 0.5):
        print(f"face detection vs the hand-drawn boxes (IoU >= {threshold}), full-resolution photos:")
        for label, detect in detectors.items():
            print(f"  {label:22s} {detection_scores(detect, photos, threshold)}")
    if "dogs.jpg" in photos:
        print("faces reported on dogs.jpg (a photo of dogs, no face): "
              + ", ".join(f"{label} {len(detect(photos['dogs.jpg']))}" for label, detect in detectors.items()))


def time_frames(fn, frames, repeats: int) -> np.ndarray:
    fn(frames[0])
    times = []
    for _ in range(repeats):
        for f in frames:
            t0 = time.perf_counter()
            fn(f)
            times.append(1000 * (time.perf_counter() - t0))
    return np.array(times)


def main(argv=None) -> int:
    a = parser(__doc__.splitlines()[0]).parse_args(argv)
    run = check_run(a.run_dir)
    from fer_core.serve.detectors import make_detector
    from fer_core.serve.recognizer import EmotionRecognizer, draw_faces
    from fer_core.serve.video import FramePipeline
    print_machine()
    fer, fer_note = load_fer()
    rec = EmotionRecognizer.from_run(run, make_detector(a.detector))
    print(f"ours: {run} (engine {rec.engine}, detector {a.detector}); theirs: {fer_note}")
    full = {p.name: read_bgr(p) for p in photo_paths()}
    frames = [cv2.resize(im, (640, 480), interpolation=cv2.INTER_AREA) for im in full.values()]
    repeats = 1 if a.quick else 10
    ours = time_frames(lambda f: draw_faces(f, rec.analyze(f)), frames, repeats)
    print(f"speed, {len(ours)} frames 640x480, detect + classify every frame (ours also draws):")
    print(f"  ours  analyze + draw_faces:      {1000 / ours.mean():.1f} frames/s, {percentiles(ours)}")
    if fer is not None:
        theirs = time_frames(fer.detect_emotions, frames, repeats)
        print(f"  fer   FER.detect_emotions:       {1000 / theirs.mean():.1f} frames/s, {percentiles(theirs)}")
        print(f"  ratio ours/fer: {theirs.mean() / ours.mean():.2f}x the frames per second")
    else:
        print(f"  fer: {fer_note}")
    pipe = FramePipeline(rec)
    video = [f for f in frames for _ in range(5 if a.quick else 30)]     # each scene held, as a camera does
    webcam = time_frames(lambda f: pipe.process(f.copy()), video, 1)
    print(f"  ours  FramePipeline (webcam path, + smoothing + drawing): {1000 / webcam.mean():.1f} frames/s, "
          f"{percentiles(webcam)}")
    blaze, haar = make_detector("blazeface"), make_detector("haar", 30)
    detectors = {"ours BlazeFace": blaze.detect,
                 "ours Haar": lambda im: haar.detect(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY))}
    if fer is not None:
        detectors["fer FER().find_faces"] = fer.find_faces
    print_detection(detectors, full)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
