"""How sharp a set of faces is: a cheap check that a dataset's parts were saved alike.

A training part much smoother than its validation/test parts (an earlier FER2013 copy had blurred
training faces and sharp test faces) makes a model that fails on sharp faces; `dataset` and `train`
warn about it, so a user holding such a copy knows before spending hours.
"""

from __future__ import annotations

import numpy as np

GAP_WARNING = 1.5     # other parts this many times sharper than the training part: warn


def mean_gradient(images: np.ndarray, sample: int = 1000, seed: int = 0) -> float:
    """Mean absolute horizontal pixel difference of a sample of faces (higher = sharper)."""
    if len(images) == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), size=min(sample, len(images)), replace=False)
    x = images[idx].astype(np.float32)
    x = x[..., 0] if x.ndim == 4 else x
    return float(np.abs(np.diff(x, axis=2)).mean())


def sharpness_gap(train_images: np.ndarray, other_images: np.ndarray) -> float:
    """Ratio of mean gradients, other / train: ~1 normally, > GAP_WARNING when training faces are much smoother."""
    g_train = mean_gradient(train_images)
    return mean_gradient(other_images) / g_train if g_train > 0 else 1.0
