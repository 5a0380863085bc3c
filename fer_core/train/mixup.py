"""Mixup (Zhang et al., 2018): train on pairs of faces blended together, with their labels blended alike.

On a small set (a CK+ fold is ~800 faces of ~100 people) a net soon learns every training face by heart;
blends of two faces are never the same twice, which keeps it learning what separates the emotions.
Batches are made in NumPy, so this works with any Keras backend.
"""

from __future__ import annotations

import math

import numpy as np

from fer_core.model.kerasenv import keras


class MixupBatches(keras.utils.PyDataset):
    """Shuffled batches of (blended faces, blended one-hot labels[, sample weights]), reshuffled every epoch.

    Each face is blended with a random partner from its batch by a weight lam ~ Beta(alpha, alpha), folded to
    lam >= 0.5 so the face keeps its own label as the larger part (class weights follow that label)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, alpha: float, seed: int,
                 class_weight: dict | None = None):
        super().__init__()
        self.x, self.y, self.batch_size, self.alpha = x, y, batch_size, alpha
        self.class_weight = class_weight
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        partner = self.rng.permutation(idx)
        lam = self.rng.beta(self.alpha, self.alpha, size=len(idx)).astype("float32")
        lam = np.maximum(lam, 1 - lam)
        lam_x = lam.reshape((-1,) + (1,) * (self.x.ndim - 1))
        x = lam_x * self.x[idx] + (1 - lam_x) * self.x[partner]
        y = lam[:, None] * self.y[idx] + (1 - lam[:, None]) * self.y[partner]
        if self.class_weight is None:
            return x, y
        w = np.array([self.class_weight[int(c)] for c in self.y[idx].argmax(1)], dtype="float32")
        return x, y, w

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))


def fit_inputs(x: np.ndarray, y: np.ndarray, batch_size: int, alpha: float, seed: int,
               class_weight: dict | None) -> dict:
    """The data arguments of model.fit: plain arrays, or mixup batches when alpha > 0."""
    if alpha <= 0:
        return {"x": x, "y": y, "batch_size": batch_size, "class_weight": class_weight}
    return {"x": MixupBatches(x, y, batch_size, alpha, seed, class_weight)}
