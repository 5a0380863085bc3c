"""How the detector's box sits in a training face: `python -m bench.framing [--faces 600]`.

FER2013 PublicTest faces (validation, never test) are put on a larger canvas and given to BlazeFace;
printed: how many it finds, the box's side as a fraction of the face image's side, and the box centre's
offset from the image centre. fer_core/serve/align.py frames every detected face by these figures
(FRAME_SCALE = 1 / side fraction, FRAME_SHIFT_Y = -offset), so the model sees faces framed as it learnt them.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from bench.common import FER2013, need, print_machine
from bench.faces_on_canvas import BORDER, SCALE, on_canvas, sample_files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", type=int, default=600)
    a = p.parse_args(argv)
    from fer_core.serve.blazeface import BlazeFaceDetector
    print_machine()
    detector = BlazeFaceDetector(min_score=0.5)
    sides, dx, dy, eye_y = [], [], [], []
    files = sample_files(need(FER2013), "PublicTest", a.faces)
    for f in files:
        face = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        found = detector.detect_faces(on_canvas(face))
        if not found:
            continue
        size = face.shape[0] * SCALE
        x, y, w, h = found[0].box
        sides.append(w / size)
        dx.append((x + w / 2 - BORDER) / size - 0.5)
        dy.append((y + h / 2 - BORDER) / size - 0.5)
        eye_y.append((np.mean([e[1] for e in found[0].eyes]) - BORDER) / size)
    print(f"BlazeFace found {len(sides)} of {len(files)} PublicTest faces on a canvas")
    print(f"box side / face image side: median {np.median(sides):.3f} (quartiles {np.percentile(sides, 25):.3f}"
          f"-{np.percentile(sides, 75):.3f}) -> FRAME_SCALE {1 / np.median(sides):.2f}")
    print(f"box centre - image centre, as a fraction of the image side: x {np.median(dx):+.3f}, "
          f"y {np.median(dy):+.3f} -> FRAME_SHIFT_Y {-np.median(dy):+.2f}")
    print(f"eye height in the training face: {np.median(eye_y):.3f} of its side")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
