"""How sharp a set of faces is, and the inference blur that matches test faces to training faces.

Why this exists: the FER2013 copy in ../shared has blurred Training_* images (sigma ~3 px) and
sharp PublicTest_/PrivateTest_ images. A model learns the blurred domain and scores ~24% on the
sharp test set; blurring test-time faces to the training sharpness (MatchSharpness) recovers it.
The same check warns any user whose training folder differs in sharpness from their test folder.
"""

from __future__ import annotations

import numpy as np

SIGMA_GRID = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)


def mean_gradient(images: np.ndarray, sample: int = 1000, seed: int = 0) -> float:
    """Mean absolute horizontal pixel difference: ~4 for the blurred FER2013 training faces, ~14 for sharp ones."""
    if len(images) == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), size=min(sample, len(images)), replace=False)
    x = images[idx].astype(np.float32)
    x = x[..., 0] if x.ndim == 4 else x
    return float(np.abs(np.diff(x, axis=2)).mean())


def sharpness_gap(train_images: np.ndarray, other_images: np.ndarray) -> float:
    """Ratio of mean gradients, other / train: ~1 normally, > 1.5 when training faces are much smoother."""
    g_train = mean_gradient(train_images)
    return mean_gradient(other_images) / g_train if g_train > 0 else 1.0


def estimate_sigma(train_images: np.ndarray, other_images: np.ndarray) -> float:
    """The grid sigma whose blur brings `other` images' mean gradient closest to the training images'."""
    import cv2
    if sharpness_gap(train_images, other_images) < 1.5:
        return 0.0
    target = mean_gradient(train_images)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(other_images), size=min(500, len(other_images)), replace=False)
    sample = other_images[idx].astype(np.float32)
    sample = sample[..., 0] if sample.ndim == 4 else sample

    def grad_after(sigma):
        if sigma == 0:
            return mean_gradient(sample)
        return mean_gradient(np.stack([cv2.GaussianBlur(im, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
                                       for im in sample]))
    return min(SIGMA_GRID, key=lambda s: abs(grad_after(s) - target))


def tune_sigma(model, x_val: np.ndarray, y_val: np.ndarray, log=print) -> float:
    """Pick the MatchSharpness sigma with the best validation accuracy; leaves it set in the model."""
    from .evaluation import predict_probs
    from .inference import make_predict_fn
    from .layers import match_sharpness_layer
    layer = match_sharpness_layer(model)
    if len(x_val) > 1500:   # enough to rank 8 sigmas (standard error ~1.3 points); keeps big backbones quick
        keep = np.random.default_rng(0).choice(len(x_val), 1500, replace=False)
        x_val, y_val = x_val[keep], y_val[keep]
    scores = {}
    for sigma in SIGMA_GRID:
        layer.sigma.assign(sigma)
        probs = predict_probs(make_predict_fn(model), x_val)
        scores[sigma] = float((probs.argmax(1) == y_val).mean())
    best = max(scores, key=scores.get)
    layer.sigma.assign(best)
    log("inference blur (sigma: val accuracy) " + ", ".join(f"{s:g}: {a:.3f}" for s, a in scores.items())
        + f" -> sigma {best:g}")
    return best
