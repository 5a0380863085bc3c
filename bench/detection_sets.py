"""The pictures bench.detection scores detectors on, all built from ../shared/data.

Close-ups: FER2013 PrivateTest and FER+ test faces upscaled from 48 to 256 px with no margin (a face
crop as a user might upload one), and every twface photo (256x256 posed face photos). Each holds one
face that fills the frame, so a detector "finds" it when it reports a box around the picture's middle.

Small faces: the photos with hand-drawn boxes, each shrunk or enlarged so its median face is a drawn
height of 22-84 px, pasted at a random place of a cell of a large canvas whose background is dogs.jpg
enlarged (animals and grass, no person: every box there is a false face). Their hand-drawn boxes,
moved and scaled the same way, are the truth.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.common import FER2013, PHOTOS, SHARED, face_boxes, need, read_bgr

FERPLUS_TEST = SHARED / "ferplus" / "FER2013Test"
TWFACE = SHARED / "twface"
CLOSE_UP_SIDE = 256
CANVAS = (3000, 2000)            # width, height: 6 MP
CELLS = (3, 2)                   # photos per canvas, across and down
FACE_HEIGHTS = (22, 84)          # the drawn height the median face of a pasted photo is scaled to


@dataclass
class Picture:
    name: str
    image: np.ndarray
    boxes: list                  # true faces, (x, y, w, h); for a close-up, the whole picture


def _sample(files: list[Path], n: int, seed: int) -> list[Path]:
    if not n or n >= len(files):
        return files
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), size=n, replace=False))]


def upscaled(path: Path) -> np.ndarray:
    """A 48x48 gray face as a 256x256 BGR picture, no margin added."""
    face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if face is None:
        raise SystemExit(f"error: cannot read {path}")
    up = cv2.resize(face, (CLOSE_UP_SIDE, CLOSE_UP_SIDE), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(up, cv2.COLOR_GRAY2BGR)


def close_up_files(n: int, twface: int = 0, seed: int = 0) -> dict[str, list[Path]]:
    """Close-up sets by name -> files: n of each FER set and `twface` twface photos (0 = all of them)."""
    fer = sorted(need(FER2013).glob("test/*/PrivateTest_*"))
    ferplus = sorted(need(FERPLUS_TEST).glob("*.png"))
    rows = list(csv.DictReader(open(need(TWFACE / "labels.csv"), newline="", encoding="utf-8")))
    return {"FER2013 PrivateTest x256": _sample(fer, n, seed), "FER+ test x256": _sample(ferplus, n, seed),
            "twface 256x256": _sample([TWFACE / r["image"] for r in rows], twface, seed)}


def close_up(path: Path) -> Picture:
    image = read_bgr(path) if path.suffix.lower() == ".jpg" else upscaled(path)
    return Picture(path.name, image, [(0, 0, image.shape[1], image.shape[0])])


def _background(width: int, height: int) -> np.ndarray:
    dogs = read_bgr(need(PHOTOS / "dogs.jpg"))
    scale = max(width / dogs.shape[1], height / dogs.shape[0])
    big = cv2.resize(dogs, (int(np.ceil(dogs.shape[1] * scale)), int(np.ceil(dogs.shape[0] * scale))),
                     interpolation=cv2.INTER_LINEAR)
    return big[:height, :width].copy()


def _paste(canvas, cell, photo, boxes, target: float, rng) -> list:
    """The photo scaled so its median face is `target` px tall, at a random place in the cell."""
    cx, cy, cw, ch = cell
    f = target / float(np.median([b[3] for b in boxes]))
    f = min(f, 0.98 * cw / photo.shape[1], 0.98 * ch / photo.shape[0])      # it must fit its cell
    w, h = int(photo.shape[1] * f), int(photo.shape[0] * f)
    small = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    x, y = cx + int(rng.integers(0, cw - w + 1)), cy + int(rng.integers(0, ch - h + 1))
    canvas[y:y + h, x:x + w] = small
    return [(x + bx * f, y + by * f, bw * f, bh * f) for bx, by, bw, bh in boxes]


def canvases(n: int, seed: int = 0, size: tuple[int, int] = CANVAS) -> list[Picture]:
    """n canvases of size (width, height), each holding CELLS photos with their faces 22-84 px tall."""
    truth = face_boxes()
    names = sorted(truth)
    photos = {name: read_bgr(PHOTOS / name) for name in names}
    rng = np.random.default_rng(seed)
    (width, height), (nx, ny) = size, CELLS
    out, k = [], 0
    for i in range(n):
        canvas, boxes = _background(width, height), []
        for j in range(nx * ny):
            name = names[k % len(names)]
            k += 1
            cell = ((j % nx) * width // nx, (j // nx) * height // ny, width // nx, height // ny)
            target = rng.uniform(*FACE_HEIGHTS)
            boxes += _paste(canvas, cell, photos[name], truth[name], target, rng)
        out.append(Picture(f"canvas {i + 1}", canvas, [tuple(int(round(v)) for v in b) for b in boxes]))
    return out


def hand_drawn() -> list[Picture]:
    """The photos with hand-drawn boxes at full resolution, and dogs.jpg (no face)."""
    truth = face_boxes()
    names = sorted(truth) + ["dogs.jpg"]
    return [Picture(name, read_bgr(need(PHOTOS / name)), truth.get(name, [])) for name in names]
