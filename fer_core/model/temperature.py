"""Temperature scaling (and logit adjustment) of a model's output probabilities, in numpy after the model call.

Our models end in a softmax, so log(probabilities) are the logits up to a per-face constant, which a softmax
ignores: dividing them by T and taking the softmax again is exactly the temperature-scaled model. Doing it on
the (N, classes) output rather than inside the graph keeps the Keras and LiteRT paths (and exported files)
as they are, and costs microseconds per batch.

Logit adjustment adds a fixed offset per class to those logits before the temperature: -tau * log(the class's
share of the training faces). It weighs up the emotions training saw rarely (disgust is 1.5% of FER2013's
training faces), whose scores a model learns to keep low; tau is chosen on validation faces (report/calibrate.py).
"""

from __future__ import annotations

import numpy as np

TINY = float(np.finfo(np.float32).tiny)   # a float32 softmax underflows to 0; log needs a floor


def apply_temperature(probs: np.ndarray, temperature: float | None, shift=None) -> np.ndarray:
    """softmax((log(p) + shift) / T): with no shift, p^(1/T) renormalised per row. T None or 1 and no shift
    return the probabilities unchanged."""
    if (temperature is None or temperature == 1.0) and shift is None or len(probs) == 0:
        return probs
    logits = np.log(np.maximum(np.asarray(probs, np.float64), TINY))
    if shift is not None:
        logits = logits + np.asarray(shift, np.float64)
    logits /= temperature or 1.0
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def prior_shift(prior, tau: float) -> np.ndarray | None:
    """The logit adjustment's per-class offsets, -tau * log(prior); None for tau 0."""
    if not tau:
        return None
    return -tau * np.log(np.maximum(np.asarray(prior, np.float64), TINY))
