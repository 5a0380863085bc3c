"""Calibration arithmetic: expected calibration error, temperature scaling and its fit, the stored temperature."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_core.model.temperature import apply_temperature
from fer_core.report.calibration import (ECE_BINS, expected_calibration_error, fit_temperature, nll,
                                         reliability_bins)
from fer_core.report.reliability import reliability_figure
from fer_core.runs import store

pytestmark = pytest.mark.unit


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def answers(top: float, k: int = 3) -> list[float]:
    """A probability row whose top (class 0) is `top`, the rest shared evenly."""
    return [top] + [(1 - top) / (k - 1)] * (k - 1)


def test_ece_is_the_face_weighted_gap_between_confidence_and_accuracy_per_bin():
    # 4 answers at 90% confidence, 3 of them right; 6 answers at 50%, 3 right; 5 answers at 20/30ths
    # (66.7%, exactly on the edge between two 1/15-wide bins: it belongs to the lower one), 4 right.
    probs = np.array([answers(0.9)] * 4 + [answers(0.5)] * 6 + [answers(20 / 30)] * 5)
    y = np.array([0, 0, 0, 1] + [0, 0, 0, 1, 2, 1] + [0, 0, 0, 0, 2])
    n = len(y)
    expected = 4 / n * abs(3 / 4 - 0.9) + 6 / n * abs(3 / 6 - 0.5) + 5 / n * abs(4 / 5 - 20 / 30)
    assert expected_calibration_error(probs, y) == pytest.approx(expected, abs=1e-12)

    bins = reliability_bins(probs, y)
    assert len(bins) == ECE_BINS and sum(b["count"] for b in bins) == n
    edge = next(b for b in bins if b["count"] == 5)
    assert edge["hi"] == pytest.approx(20 / 30) and edge["accuracy"] == pytest.approx(4 / 5)


def test_ece_is_zero_for_honest_answers_and_one_for_certain_wrong_ones():
    probs = np.array([answers(0.75, 2)] * 8)
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1])          # right 6 times in 8 at 75%
    assert expected_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-12)
    certain = np.eye(3)[[0, 1, 2]]
    assert expected_calibration_error(certain, np.array([1, 2, 0])) == pytest.approx(1.0)
    assert expected_calibration_error(certain, np.array([0, 1, 2])) == pytest.approx(0.0)


def test_temperature_divides_the_logits_and_keeps_the_answer():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 7)) * 3
    p = softmax(z).astype(np.float32)
    for t in (0.5, 1.7, 4.0):
        scaled = apply_temperature(p, t)
        np.testing.assert_allclose(scaled, softmax(z / t), atol=1e-5)
        assert (scaled.argmax(1) == p.argmax(1)).all()
    assert apply_temperature(p, None) is p and apply_temperature(p, 1.0) is p
    assert (apply_temperature(p, 2.0).max(1) < p.max(1)).all()      # T > 1: less sure of every answer


def test_fit_finds_the_temperature_that_made_a_model_overconfident():
    # Faces whose true class really follows softmax(z); the model reports softmax(2.5 z): too sure by T = 2.5.
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20000, 7)) * 1.5
    truth = softmax(z)
    y = np.array([rng.choice(7, p=row) for row in truth])
    model = softmax(2.5 * z)
    t = fit_temperature(model, y)
    assert t == pytest.approx(2.5, rel=0.05)
    assert nll(apply_temperature(model, t), y) < nll(model, y)
    assert expected_calibration_error(apply_temperature(model, t), y) < 0.02 < expected_calibration_error(model, y)


def test_reliability_figure_draws_the_bins_it_is_given():
    probs = np.array([answers(0.9)] * 4 + [answers(0.5)] * 6)
    y = np.array([0, 0, 0, 1] + [0, 0, 0, 1, 2, 1])
    before, after = reliability_bins(probs, y), reliability_bins(apply_temperature(probs, 2.0), y)
    fig = reliability_figure(before, after)
    bars = [t for t in fig.data if t.type == "bar" and t.name == "share right"]
    assert [list(b.y) for b in bars] == [[b["accuracy"] for b in bins if b["count"]] for bins in (before, after)]
    assert "ECE" in fig.layout.annotations[0].text


def test_a_run_reads_its_temperature_and_ignores_a_damaged_file(tmp_path):
    assert store.read_temperature(tmp_path) is None                      # never calibrated
    path = store.calibration_path(tmp_path)
    for bad in ("{not json", json.dumps({"temperature": -1}), json.dumps({"temperature": "hot"}),
                json.dumps({"temperature": None})):
        path.write_text(bad)
        assert store.read_temperature(tmp_path) is None
    store.write_json_atomic(path, {"temperature": 1.25})
    assert store.read_temperature(tmp_path) == 1.25


def test_logit_adjustment_lifts_a_rare_class_and_its_tau_is_chosen_on_validation_by_the_stated_rule():
    """A model that keeps a rare class's scores low: adding -tau*log(prior) recovers it; the rule picks the tau
    with the best macro F1 among those within a point of the unadjusted accuracy, and 0 when adjusting costs
    more than that."""
    from fer_core.model.temperature import prior_shift
    from fer_core.report.calibrate import choose_tau
    rng = np.random.default_rng(0)
    prior = np.array([0.6, 0.38, 0.02])
    y = rng.choice(3, size=4000, p=[0.45, 0.45, 0.10])
    logits = rng.normal(0, 1, (len(y), 3)) + 2.5 * np.eye(3)[y] + np.log(prior)   # scores shaped by the prior
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    tau, grid = choose_tau(probs, y, prior, ["a", "b", "rare"])
    assert [g["tau"] for g in grid] == [0.0, 0.25, 0.5, 0.75, 1.0] and tau > 0
    best = max((g for g in grid if g["accuracy"] >= grid[0]["accuracy"] - 0.01), key=lambda g: g["macro_f1"])
    assert tau == best["tau"]
    adjusted = apply_temperature(probs, None, prior_shift(prior, tau))
    rare = y == 2
    assert (adjusted.argmax(1)[rare] == 2).mean() > (probs.argmax(1)[rare] == 2).mean() + 0.2
    np.testing.assert_allclose(adjusted.sum(1), 1, atol=1e-6)
    assert prior_shift(prior, 0) is None and apply_temperature(probs, None, None) is probs

    balanced = np.exp(rng.normal(0, 1, (4000, 3)) + 2.5 * np.eye(3)[y])          # no prior in its scores:
    balanced /= balanced.sum(1, keepdims=True)                                    # adjusting only costs
    assert choose_tau(balanced, y, np.array([0.9, 0.09, 0.01]), ["a", "b", "rare"])[0] == 0.0


def test_a_run_reads_its_logit_adjustment_and_ignores_a_damaged_one(tmp_path):
    path = store.calibration_path(tmp_path)
    assert store.read_class_shift(tmp_path) is None
    for bad in ({"logit_adjustment": None}, {"logit_adjustment": {"shift": "big"}}, {"logit_adjustment": {"shift": []}},
                {"logit_adjustment": {"shift": [1.0, "x"]}}):
        store.write_json_atomic(path, {"temperature": 1.2, **bad})
        assert store.read_class_shift(tmp_path) is None
    store.write_json_atomic(path, {"temperature": 1.2, "logit_adjustment": {"tau": 0.5, "shift": [0.1, 2.0, 0.3]}})
    assert store.read_class_shift(tmp_path) == [0.1, 2.0, 0.3]
