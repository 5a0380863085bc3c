"""Memory over a long webcam session: `python -m bench.memory [RUN_DIR] [--frames 10000] [--quick]`.

One recognizer and one FramePipeline process N frames (real photos at 640x480, cycled, with a
small drift so frames differ); the process's resident memory (RSS) is printed after a warm-up
and every tenth of the run. Growth after warm-up is what a leak would show (target < 50 MB).
"""

from __future__ import annotations

import gc

import cv2

from bench.common import check_run, parser, photo_paths, print_machine, read_bgr, rss_mb


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10_000)
    a = p.parse_args(argv)
    run = check_run(a.run_dir)
    from bench.pipeline import drifting_frames
    from fer_core.serve.recognizer import EmotionRecognizer
    from fer_core.serve.video import FramePipeline
    print_machine()
    rec = EmotionRecognizer.from_run(run)
    print(f"model: {run} (engine {rec.engine})")
    photos = [cv2.resize(read_bgr(p), (640, 480), interpolation=cv2.INTER_AREA) for p in photo_paths()]
    frames = 150 if a.quick else a.frames
    pipe = FramePipeline(rec)
    for f in drifting_frames(photos, 100, 10):            # warm-up: buffers, interpreters, traces
        pipe.process(f)
    gc.collect()
    start = rss_mb()
    print(f"RSS after warm-up (100 frames): {start:.1f} MB")
    step = max(1, frames // 10)
    faces = 0
    for i, f in enumerate(drifting_frames(photos, frames, 25), 1):
        _, r = pipe.process(f)
        faces += len(r.faces)
        if i % step == 0 or i == frames:
            print(f"  after {i:6d} frames: RSS {rss_mb():.1f} MB ({rss_mb() - start:+.1f} MB)")
    gc.collect()
    end = rss_mb()
    print(f"RSS growth over {frames} frames ({faces} faces classified): {end - start:+.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
