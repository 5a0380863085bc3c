"""Does a 90% answer come true 90% of the time? Expected calibration error, reliability bins, and the
temperature that makes a model's probabilities honest on its validation faces.

Pure numpy on (N, classes) probabilities and (N,) true class indices: the CLI, the evaluation and the
Runs page all call these, on probabilities computed elsewhere.
"""

from __future__ import annotations

import math

import numpy as np

from fer_core.model.temperature import TINY, apply_temperature

ECE_BINS = 15                  # equal-width confidence bins, as in Guo et al. 2017 (the usual ECE)
T_RANGE = (0.05, 20.0)         # temperatures searched: far beyond any model's useful range on both sides


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (what temperature scaling minimises)."""
    p = np.asarray(probs, np.float64)[np.arange(len(y)), np.asarray(y)]
    return float(-np.mean(np.log(np.maximum(p, TINY))))


def reliability_bins(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per confidence bin (lo, hi]: how many answers, their mean confidence, and how many came true.

    The confidence of an answer is its top probability; bin b holds confidences in (b/bins, (b+1)/bins]
    (a confidence of exactly 0 goes to the first bin). Empty bins are kept, with count 0.
    """
    probs = np.asarray(probs, np.float64)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    right = (probs.argmax(axis=1) == np.asarray(y)) if len(probs) else np.zeros(0, bool)
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        member = index == b
        n = int(member.sum())
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "count": n,
                    "confidence": float(conf[member].mean()) if n else None,
                    "accuracy": float(right[member].mean()) if n else None})
    return out


def ece_from_bins(bins: list[dict]) -> float | None:
    """Sum over bins of (share of answers) x |accuracy - mean confidence|."""
    total = sum(b["count"] for b in bins)
    if not total:
        return None
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float | None:
    return ece_from_bins(reliability_bins(probs, y, bins))


def fit_temperature(probs: np.ndarray, y: np.ndarray, steps: int = 60) -> float:
    """The T that minimises NLL of softmax(log p / T): a golden-section search on log T.

    NLL is convex in 1/T (a log-sum-exp minus a linear term), so it has one minimum along log T and a
    golden-section search finds it; 60 steps narrow the range to well under 0.1% of T.
    """
    if len(y) == 0:
        raise ValueError("no faces to fit a temperature on")
    f = lambda log_t: nll(apply_temperature(probs, math.exp(log_t)), y)   # noqa: E731
    a, b = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return float(math.exp((a + b) / 2))


def calibration_figures(probs: np.ndarray, y: np.ndarray, temperature: float | None, shift=None) -> dict:
    """NLL, ECE and accuracy of the raw probabilities ('before') and, given a temperature, of the scaled ones
    ('after', with the logit adjustment's offsets where given; None without a temperature)."""
    def figures(p):
        return {"nll": nll(p, y), "ece": expected_calibration_error(p, y),
                "accuracy": float(np.mean(np.asarray(p).argmax(1) == y)) if len(y) else None}
    return {"temperature": temperature, "bins": ECE_BINS, "num_faces": int(len(y)), "before": figures(probs),
            "after": figures(apply_temperature(probs, temperature, shift)) if temperature else None}
