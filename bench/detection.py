"""Face detection, ours beside fer's: `python -m bench.detection [--faces 500] [--canvases 12] [--full] [--quick]`.

Three sets, all from ../shared/data (bench/detection_sets.py builds them):
  close-ups    FER2013 PrivateTest and FER+ test faces upscaled to 256 px with no margin (--faces of each,
               default 500; --full: all of them) and every twface photo: the share of pictures where the
               detector finds the face (a box around the picture's middle, 1/4 to 6/5 of its side), and
               precision (boxes that are that face / all boxes);
  small faces  the hand-drawn-box photos pasted onto 3000x2000 canvases (dogs.jpg as background) with
               faces 22-84 px tall: recall per face-height band and precision (IoU >= 0.3, one-to-one);
  hand-drawn   the 43 hand-drawn boxes at full resolution (IoU >= 0.3), and the faces reported on dogs.jpg.
Each with ms per picture. Detectors: ours as the photo path runs it (the default: frame pass, close-up look,
tiled search of large photos), ours as the webcam/video path runs it (no tiling), BlazeFace's single
full-range pass (what the default was before), and the `fer` package's detector (its FER().find_faces,
OpenCV's Haar cascade with fer's defaults). Without fer installed, ours are printed and how to install fer.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import matched, print_machine
from bench.detection_sets import CANVAS, Picture, canvases, close_up, close_up_files, hand_drawn
from bench.vs_fer import load_fer

BANDS = ((0, 23, "<24"), (24, 39, "24-39"), (40, 80, "40-80"), (81, 10 ** 6, ">80"))


def our_detectors() -> dict:
    from fer_core.serve.blazeface import BlazeFaceDetector
    from fer_core.serve.detectors import make_detector
    default, single = make_detector(), BlazeFaceDetector()
    return {"ours, photo path": lambda im: [f.box for f in default.detect_photo(im)],
            "ours, webcam path": lambda im: [f.box for f in default.detect_faces(im)],
            "BlazeFace one pass": lambda im: [f.box for f in single.detect_faces(im)]}


def timed(detect, image) -> tuple[list, float]:
    t0 = time.perf_counter()
    boxes = [tuple(int(v) for v in b) for b in detect(image)]
    return boxes, 1000 * (time.perf_counter() - t0)


def is_the_close_up(box, width: int, height: int) -> bool:
    """A box around the middle of a picture the face fills: centre in the middle half, a plausible size."""
    x, y, w, h = box
    side = min(width, height)
    return (abs(x + w / 2 - width / 2) < width / 4 and abs(y + h / 2 - height / 2) < height / 4
            and 0.25 * side <= max(w, h) <= 1.2 * side)


def score_close_ups(detect, pictures: list[Picture]) -> str:
    found = n_boxes = 0
    ms = []
    for p in pictures:
        boxes, t = timed(detect, p.image)
        ms.append(t)
        hit = any(is_the_close_up(b, p.image.shape[1], p.image.shape[0]) for b in boxes)
        found += hit
        n_boxes += len(boxes)
    precision = found / n_boxes if n_boxes else 1.0
    return (f"found {100 * found / len(pictures):5.1f}% ({found}/{len(pictures)})  "
            f"precision {precision:.3f} ({found}/{n_boxes})  {np.mean(ms):6.1f} ms/picture")


def score_boxes(detect, pictures: list[Picture]) -> str:
    """Recall per face-height band, overall recall and precision, ms per picture."""
    heights, hits, tp, n_boxes, ms = [], [], 0, 0, []
    for p in pictures:
        boxes, t = timed(detect, p.image)
        ms.append(t)
        got = matched(boxes, p.boxes)
        heights += [b[3] for b in p.boxes]
        hits += [j in got for j in range(len(p.boxes))]
        tp += len(got)
        n_boxes += len(boxes)
    heights, hits = np.array(heights), np.array(hits, bool)
    bands = []
    for lo, hi, label in BANDS:
        sel = (heights >= lo) & (heights <= hi)
        if sel.any():
            bands.append(f"{label} {hits[sel].mean():.3f} ({hits[sel].sum()}/{sel.sum()})")
    precision = tp / n_boxes if n_boxes else 1.0
    return (f"recall {hits.mean():.3f} ({tp}/{len(hits)}) [{', '.join(bands)}]  "
            f"precision {precision:.3f} ({tp}/{n_boxes})  {np.mean(ms):6.1f} ms/picture")


def print_close_ups(detectors: dict, faces: int, twface: int = 0) -> None:
    print(f"close-ups (one face filling the picture; {faces or 'all'} of each FER set, "
          f"{twface or 'every'} twface photo{'s' if twface else ''}):")
    for set_name, files in close_up_files(faces, twface).items():
        pictures = [close_up(f) for f in files]
        print(f"  {set_name} ({len(pictures)} pictures)")
        for label, detect in detectors.items():
            print(f"    {label:20s} {score_close_ups(detect, pictures)}")


def print_small_faces(detectors: dict, n: int) -> None:
    pictures = canvases(n)
    n_faces = sum(len(p.boxes) for p in pictures)
    print(f"small faces: {n} canvases {CANVAS[0]}x{CANVAS[1]}, {n_faces} faces (IoU >= 0.3; bands by drawn height):")
    for label, detect in detectors.items():
        print(f"  {label:20s} {score_boxes(detect, pictures)}")


def print_hand_drawn(detectors: dict) -> None:
    pictures = hand_drawn()
    dogs = next(p for p in pictures if p.name == "dogs.jpg")
    faces = [p for p in pictures if p.boxes]
    print(f"hand-drawn boxes: {len(faces)} photos, {sum(len(p.boxes) for p in faces)} faces, full resolution "
          "(IoU >= 0.3):")
    for label, detect in detectors.items():
        print(f"  {label:20s} {score_boxes(detect, faces)}")
    print("faces reported on dogs.jpg (no face there): "
          + ", ".join(f"{label} {len(detect(dogs.image))}" for label, detect in detectors.items()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", type=int, default=500, help="faces of each FER set among the close-ups (default 500)")
    p.add_argument("--full", action="store_true", help="every FER2013 PrivateTest and FER+ test face")
    p.add_argument("--canvases", type=int, default=12, help="small-face canvases (default 12)")
    p.add_argument("--quick", action="store_true", help="a shortened run (smoke tests); figures are rough")
    a = p.parse_args(argv)
    print_machine()
    fer, fer_note = load_fer()
    detectors = our_detectors()
    if fer is not None:
        detectors["fer FER().find_faces"] = fer.find_faces
    print(f"fer: {fer_note}")
    faces = 0 if a.full else (10 if a.quick else a.faces)
    print_close_ups(detectors, faces, 10 if a.quick else 0)
    print_small_faces(detectors, 1 if a.quick else a.canvases)
    print_hand_drawn(detectors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
