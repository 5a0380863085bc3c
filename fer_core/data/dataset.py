"""The one in-memory form every dataset format is read into, and the error a bad dataset raises.

Kept apart from the readers so that format modules (FER+, ...) can build a `Dataset` without
importing the reader that dispatches to them.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_core.errors import UserError


class DatasetError(UserError, ValueError):
    """A dataset that cannot be used; the message names the problem and what to do."""


@dataclass
class Dataset:
    images: np.ndarray                 # (N, S, S) uint8 grayscale
    labels: np.ndarray                 # (N,) int, index into class_names
    class_names: list[str]
    sources: list[str]                 # file (relative to path) or "row N" per sample
    format: str                        # fer2013-csv | fer2013-folders | ckplus | train-test-folders | image-folder
    path: str
    splits: np.ndarray | None = None   # (N,) "train"/"val"/"test" where the dataset defines them
    groups: np.ndarray | None = None   # (N,) subject ids where known
    problems: list[str] = field(default_factory=list)
    original_sizes: Counter = field(default_factory=Counter)
    targets: np.ndarray | None = None  # (N, K) float soft targets (FER+ vote distributions); None = one-hot labels
    label_mode: str = ""              # FER+: majority | probability

    @property
    def name(self) -> str:
        return Path(self.path).name

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """Stable id of the content's identity: sources and labels (cheap, no pixel hashing)."""
        h = hashlib.sha1()
        for s, y in zip(self.sources, self.labels):
            h.update(f"{s}\t{int(y)}\n".encode())
        return h.hexdigest()[:16]

    def counts(self) -> dict:
        """{split: {class: count}}; split 'all' when the dataset defines none."""
        out: dict = {}
        splits = self.splits if self.splits is not None else np.array(["all"] * len(self))
        for sp in sorted(set(splits.tolist()), key=lambda s: ["train", "val", "test", "all"].index(s)
                         if s in ("train", "val", "test", "all") else 9):
            mask = splits == sp
            c = Counter(self.labels[mask].tolist())
            out[sp] = {name: int(c.get(i, 0)) for i, name in enumerate(self.class_names)}
        return out

    def sharpness(self) -> dict:
        """Mean pixel gradient per split part: parts saved differently (one blurred) differ a lot (sharpness.py)."""
        from fer_core.data.sharpness import mean_gradient
        if self.splits is None:
            return {"all": round(mean_gradient(self.images), 2)}
        return {sp: round(mean_gradient(self.images[self.splits == sp]), 2)
                for sp in ("train", "val", "test") if (self.splits == sp).any()}

    def summary(self) -> dict:
        counts = self.counts()
        return {
            "path": self.path,
            "name": self.name,
            "format": self.format,
            "classes": self.class_names,
            "num_samples": int(len(self)),
            "split_totals": {sp: sum(c.values()) for sp, c in counts.items()},
            "counts": counts,
            "has_subjects": self.groups is not None,
            "num_subjects": int(len(set(self.groups.tolist()))) if self.groups is not None else None,
            "image_sizes": {f"{w}x{h}": n for (w, h), n in self.original_sizes.most_common(10)},
            "sharpness": self.sharpness(),
            "problems": self.problems,
            "fingerprint": self.fingerprint(),
        }
