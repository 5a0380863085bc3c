"""Batch classification speed: `python -m bench.throughput [RUN_DIR] [--quick]`.

Real 48x48 face crops (FER2013 PrivateTest) through EmotionRecognizer.classify, the call the
app and the CLI use, in crops/s. Also, for comparison, each engine the machine could use:
the Keras model as stored (mixed_bfloat16 for the default model), a float32 copy of it, and
the run's model.tflite when one was exported (whatever export.json says about using it).
And, in the same run, the `fer` package's own classifier call on the same faces (resized to its 64x64 and
scaled as it scales them; the resizing is not timed), when fer is installed (see bench.vs_fer).
On an AVX2-only CPU: `python -m bench.as_avx2 -- python -m bench.throughput`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import FER2013, check_run, need, parser, print_machine


def load_crops(limit: int) -> np.ndarray:
    files = sorted(f for f in need(FER2013 / "test").glob("*/PrivateTest_*") if f.suffix in (".png", ".jpg"))[:limit]
    if not files:
        raise SystemExit(f"error: no PrivateTest_* images under {FER2013 / 'test'}")
    return np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])[..., None].astype(np.float32)


def crops_per_second(fn, x: np.ndarray, min_seconds: float) -> float:
    fn(x[:min(len(x), 256)])                       # warm-up
    n, t_end, t0 = 0, time.perf_counter() + min_seconds, time.perf_counter()
    while time.perf_counter() < t_end or n == 0:
        fn(x)
        n += len(x)
    return n / (time.perf_counter() - t0)


def latency_ms(fn, x: np.ndarray, batch: int, calls: int) -> float:
    fn(x[:batch])
    t = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(x[:batch])
        t.append(time.perf_counter() - t0)
    return 1000 * float(np.median(t))


def shared_by_threads(fn, x: np.ndarray, threads: int, batch: int, seconds: float) -> float:
    """Crops/s when `threads` callers (sessions) share one predict function, each with `batch` faces a call."""
    fn(x[:batch])
    done, stop = [0] * threads, threading.Event()

    def caller(i: int) -> None:
        while not stop.is_set():
            fn(x[i * batch:(i + 1) * batch])
            done[i] += batch
    pool = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def concurrency_lines(tfl: Path, x: np.ndarray, seconds: float) -> None:
    """The app's model is shared by every session: one interpreter behind a lock, or one per caller at once
    (make_tflite_fn's default is one per cores/num_threads)."""
    from fer_core.model.predict import make_tflite_fn
    print(f"{'litert, 8 threads at once':26s} {'crops/s, 3 faces/call':>22s} {'crops/s, 64/call':>17s}")
    for name, limit in (("one interpreter + lock", 1), ("one per caller (8)", 8)):
        print(f"{name:26s} {shared_by_threads(make_tflite_fn(tfl, max_interpreters=limit), x, 8, 3, seconds):>22,.0f}"
              f" {shared_by_threads(make_tflite_fn(tfl, max_interpreters=limit), x, 8, 64, seconds):>17,.0f}")


def fer_line(x: np.ndarray, seconds: float) -> str:
    """fer's crops/s through its FER._classify_emotions (its default engine: its quantized LiteRT model)."""
    from bench.vs_fer import load_fer
    fer, note = load_fer()
    if fer is None:
        return f"fer: {note}"
    faces = np.stack([cv2.resize(f[..., 0], (64, 64)) for f in x]).astype(np.float32)
    faces = (faces / 255.0 - 0.5) * 2.0      # fer's own preprocessing (v2); (N, 64, 64), as fer passes them
    rate = crops_per_second(fer._classify_emotions, faces, seconds)
    return f"{note} FER._classify_emotions: {rate:,.0f} crops/s (same {len(x)} crops at 64x64)"


def main(argv=None) -> int:
    a = parser(__doc__.splitlines()[0]).parse_args(argv)
    run = check_run(a.run_dir)
    from fer_core.model.predict import make_predict_fn, make_tflite_fn
    from fer_core.serve.export import float32_copy
    from fer_core.serve.recognizer import EmotionRecognizer
    print_machine()
    x = load_crops(512 if a.quick else 3589)
    seconds = 1.0 if a.quick else 5.0
    rec = EmotionRecognizer.from_run(run)
    print(f"model: {run} (the app's engine: {rec.engine}); {len(x)} real 48x48 crops (FER2013 PrivateTest)")
    ours = crops_per_second(rec.classify, x, seconds)
    print(f"EmotionRecognizer.classify: {ours:,.0f} crops/s (one call with all {len(x)} crops)")
    print(fer_line(x, seconds))
    engines = {"keras (as stored)": make_predict_fn(rec.model) if rec.engine != "keras" else rec.predict_fn,
               "keras float32 copy": make_predict_fn(float32_copy(rec.model))}
    tfl = Path(run) / "model.tflite"
    if tfl.is_file():
        engines["litert model.tflite"] = make_tflite_fn(tfl)
    calls = 20 if a.quick else 200
    print(f"{'engine':22s} {'crops/s (batch 256)':>20s} {'1 face ms':>10s} {'3 faces ms':>11s}")
    for name, fn in engines.items():
        def batched(arr, fn=fn):
            return np.concatenate([fn(arr[i:i + 256]) for i in range(0, len(arr), 256)])
        print(f"{name:22s} {crops_per_second(batched, x, seconds):>20,.0f} {latency_ms(fn, x, 1, calls):>10.2f} "
              f"{latency_ms(fn, x, 3, calls):>11.2f}")
    if tfl.is_file():
        concurrency_lines(tfl, x, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
