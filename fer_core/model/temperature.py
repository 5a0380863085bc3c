"""Temperature scaling of a model's output probabilities, in numpy after the model call.

Our models end in a softmax, so log(probabilities) are the logits up to a per-face constant, which a softmax
ignores: dividing them by T and taking the softmax again is exactly the temperature-scaled model. Doing it on
the (N, classes) output rather than inside the graph keeps the Keras and LiteRT paths (and exported files)
as they are, and costs microseconds per batch.
"""

from __future__ import annotations

import numpy as np

TINY = float(np.finfo(np.float32).tiny)   # a float32 softmax underflows to 0; log needs a floor


def apply_temperature(probs: np.ndarray, temperature: float | None) -> np.ndarray:
    """softmax(log(p) / T): p^(1/T) renormalised per row. T None or 1 returns the probabilities unchanged."""
    if temperature is None or temperature == 1.0 or len(probs) == 0:
        return probs
    logits = np.log(np.maximum(np.asarray(probs, np.float64), TINY)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
