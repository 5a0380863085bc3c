"""FER+'s annotator votes as soft training targets for FER2013's own faces.

FER2013's single label and FER+'s ten votes agree on only about 62-63% of faces: many FER2013 labels are
one guess on an ambiguous face. Training on a blend of the two tells the model how ambiguous a face is
instead of forcing one answer, which is what a model needs to read faces it has never seen.

The two copies share their pixels (FER+ relabelled FER2013's images), so faces are joined by a hash of
their pixels, not by name: FER2013's image folders name files `Training_<id>`, FER+ names them
`fer<row>.png`. Only training faces get blended targets; validation and test keep FER2013's labels, so
every figure stays comparable with published FER2013 results.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from fer_core.data.dataset import Dataset, DatasetError
from fer_core.data.emotions import canonical
from fer_core.data.ferplus import FERPLUS_CLASSES, read_label_csv, soft_target

TRAIN_FOLDER = "FER2013Train"
VOTE_WEIGHT = 0.5          # share of the target that comes from FER+'s votes; the rest is FER2013's label


def _pixel_key(img: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(img, dtype=np.uint8).tobytes()).hexdigest()


def read_vote_targets(ferplus_root: str | Path, class_names: list[str]) -> dict[str, np.ndarray]:
    """{pixel hash: vote distribution over class_names} for FER+'s training faces with a clear vote.

    Emotions FER2013 does not have (contempt) lose their votes; faces whose votes say unknown or not a face
    are left out (they keep their FER2013 label alone).
    """
    folder = Path(ferplus_root) / TRAIN_FOLDER
    if not (folder / "label.csv").is_file():
        raise DatasetError(f"{ferplus_root}: no {TRAIN_FOLDER}/label.csv; give the FER+ folder in Microsoft's "
                           "layout (FER2013Train/, FER2013Valid/, FER2013Test/).")
    columns = [class_names.index(c) if c in class_names else -1 for c in (canonical(n) for n in FERPLUS_CLASSES)]
    targets = {}
    for name, votes in read_label_csv(folder / "label.csv"):
        dist = soft_target(votes)
        img = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        if dist is None or img is None:
            continue
        mapped = np.zeros(len(class_names), np.float32)
        for src, dst in enumerate(columns):
            if dst >= 0:
                mapped[dst] += dist[src]
        if mapped.sum() > 0:
            targets[_pixel_key(img)] = mapped / mapped.sum()
    return targets


def blend_vote_targets(ds: Dataset, y: np.ndarray, rows: np.ndarray, ferplus_root: str | Path) -> int:
    """Blend FER+'s votes into the one-hot targets y at the given rows (in place); -> faces blended."""
    votes = read_vote_targets(ferplus_root, ds.class_names)
    blended = 0
    for r in rows:
        dist = votes.get(_pixel_key(ds.images[r]))
        if dist is not None:
            y[r] = (1.0 - VOTE_WEIGHT) * y[r] + VOTE_WEIGHT * dist
            blended += 1
    if blended == 0:
        raise DatasetError(f"none of the training faces of {ds.path} is among FER+'s training faces in "
                           f"{ferplus_root}; FER+ votes only apply to FER2013 itself.")
    return blended
