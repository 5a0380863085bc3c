"""Webcam and photo speed: `python -m bench.pipeline [RUN_DIR] [--frames 500] [--quick]`.

Webcam case: the real photos in ../shared/data/photos, resized to 640x480, each shown for a
run of consecutive frames with a small drift (a camera does not jump scenes every frame),
through FramePipeline.process (detect, align, classify all faces in one batch, smooth, draw).
Printed: frames/s sustained and p50/p95 frame time, over all frames and over the frames with
1-3 faces (the target case). BlazeFace (the default) searches every frame; with --detector haar,
also detect_every=3 and detect_every=3 with the search on a background thread.

Photo case: each photo upscaled to 4000x3000 (12 MP), analysed (detect, classify) and annotated.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from bench.common import check_run, parser, percentiles, photo_paths, print_machine, read_bgr


def drifting_frames(photos: list[np.ndarray], total: int, per_scene: int):
    """`total` 640x480 frames: each photo for `per_scene` frames, shifted by up to 6 px over its run."""
    i = 0
    while i < total:
        img = photos[(i // per_scene) % len(photos)]
        k = i % per_scene
        dx, dy = 6 * np.sin(k / 7), 4 * np.cos(k / 11)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        yield cv2.warpAffine(img, m, (640, 480), borderMode=cv2.BORDER_REFLECT)
        i += 1


def bench_webcam(rec, photos, frames: int, per_scene: int, detect_every: int, background: bool = False) -> None:
    """Frames back to back; frames/s is over the whole wall-clock time (a background search counts)."""
    from fer_core.serve.video import FramePipeline
    pipe = FramePipeline(rec, detect_every=detect_every, background_detect=background)
    for f in drifting_frames(photos, 10, 5):       # warm-up: first calls allocate buffers
        pipe.process(f)
    pipe.close()
    pipe = FramePipeline(rec, detect_every=detect_every, background_detect=background)
    times, faces = [], []
    start = time.perf_counter()
    for f in drifting_frames(photos, frames, per_scene):
        t0 = time.perf_counter()
        _, result = pipe.process(f)
        times.append(1000 * (time.perf_counter() - t0))
        faces.append(len(result.faces))
    wall = time.perf_counter() - start
    pipe.close()
    times, faces = np.array(times), np.array(faces)
    sel = (faces >= 1) & (faces <= 3)
    mode = f"detect_every={detect_every}" + (", background search" if background else "")
    print(f"webcam 640x480, {mode}: {len(times)} frames, {len(times) / wall:.1f} frames/s, "
          f"{percentiles(times)}; faces per frame {faces.mean():.1f}")
    if sel.any():
        print(f"  frames with 1-3 faces ({sel.sum()}): {percentiles(times[sel])}")


def bench_photo(rec, photos_full, repeats: int) -> None:
    from fer_core.serve.recognizer import draw_faces
    times, n_faces = [], []
    for img in photos_full:
        big = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC)
        rec.analyze(big)                          # warm-up for this size
        for _ in range(repeats):
            t0 = time.perf_counter()
            faces = rec.analyze(big)
            draw_faces(big, faces)
            times.append(1000 * (time.perf_counter() - t0))
            n_faces.append(len(faces))
    t = np.array(times)
    print(f"12-MP photo 4000x3000 (detect, classify, annotate): {len(t)} runs over {len(photos_full)} photos, "
          f"mean {t.mean() / 1000:.3f} s, {percentiles(t)}; faces per photo {np.mean(n_faces):.1f}")


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=500, help="webcam frames to time (default 500)")
    p.add_argument("--engine", choices=["auto", "keras"], default="auto",
                   help="auto: what the app uses (LiteRT when export.json allows); keras: force the Keras model")
    a = p.parse_args(argv)
    run = check_run(a.run_dir)
    from fer_core.serve.recognizer import EmotionRecognizer
    print_machine()
    from fer_core.serve.detectors import make_detector
    rec = EmotionRecognizer.from_run(run, make_detector(a.detector), prefer_tflite=a.engine == "auto")
    print(f"model: {run} (engine {rec.engine}, detector {a.detector})")
    paths = photo_paths()
    full = [read_bgr(p) for p in paths]
    small = [cv2.resize(im, (640, 480), interpolation=cv2.INTER_AREA) for im in full]
    frames = 40 if a.quick else a.frames
    per_scene = 10 if a.quick else 50
    # BlazeFace searches every frame (a few ms); Haar's modes: every frame, every 3rd, and on a background thread
    modes = ((1, False),) if a.detector == "blazeface" else ((1, False), (3, False), (3, True))
    for every, background in modes:
        bench_webcam(rec, small, frames, per_scene, every, background)
    bench_photo(rec, full[:2] if a.quick else full, 1 if a.quick else 3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
