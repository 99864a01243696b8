"""dnnbook.calibration on hand-computable inputs, and the chapter's MC-dropout loop on a tiny
dropout model."""

import math

import keras
import matplotlib
import numpy as np
import pytest

from dnnbook import calibration as u
from tests import chapter_code

matplotlib.use("Agg")


def test_nll_and_accuracy_by_hand():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    labels = np.array([0, 1, 1])
    assert u.nll(probs, labels) == pytest.approx(
        -(math.log(0.5) + math.log(0.1) + math.log(0.8)) / 3
    )
    # argmax of a tie picks class 0: rows 0 and 2 right, row 1 wrong
    assert u.accuracy(probs, labels) == pytest.approx(2 / 3)


def test_nll_is_finite_for_zero_probability():
    assert np.isfinite(u.nll(np.array([[1.0, 0.0]]), np.array([1])))


def test_ece_perfectly_calibrated_is_zero():
    # four predictions at confidence 0.75, three of them right: accuracy equals confidence
    probs = np.array([[0.75, 0.25]] * 4)
    labels = np.array([0, 0, 0, 1])
    assert u.ece(probs, labels, n_bins=10) == pytest.approx(0.0)


def test_ece_by_hand_two_bins():
    # bin (0.5, 0.6]: two at 0.6, one right -> |0.5 - 0.6| = 0.1
    # bin (0.9, 1.0]: two at 0.95, both right -> |1 - 0.95| = 0.05
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.95, 0.05], [0.05, 0.95]])
    labels = np.array([0, 1, 0, 1])
    assert u.ece(probs, labels, n_bins=10) == pytest.approx((2 * 0.1 + 2 * 0.05) / 4)


def test_reliability_table_bins_and_counts():
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.95, 0.05], [0.05, 0.95]])
    labels = np.array([0, 1, 0, 1])
    t = u.reliability(probs, labels, n_bins=10)
    assert len(t) == 10 and t["count"].sum() == 4
    assert t.loc[5, "count"] == 2 and t.loc[5, "accuracy"] == pytest.approx(0.5)
    assert t.loc[5, "confidence"] == pytest.approx(0.6)
    assert t.loc[9, "count"] == 2 and t.loc[9, "accuracy"] == pytest.approx(1.0)
    assert np.isnan(t.loc[0, "accuracy"])  # empty bins have NaN means


def test_confidence_one_falls_in_last_bin():
    t = u.reliability(np.array([[1.0, 0.0]]), np.array([0]), n_bins=4)
    assert t.loc[3, "count"] == 1


def test_entropy_by_hand():
    np.testing.assert_allclose(
        u.entropy(np.array([[0.5, 0.5], [1.0, 0.0]])), [math.log(2), 0.0], atol=1e-9
    )


def test_scores_by_hand():
    probs = np.array([[0.75, 0.25]] * 4)
    s = u.scores(probs, np.array([0, 0, 0, 1]))
    assert s["accuracy"] == pytest.approx(0.75) and s["confidence"] == pytest.approx(0.75)
    assert s["ece"] == pytest.approx(0.0)
    assert s["nll"] == pytest.approx(-(3 * math.log(0.75) + math.log(0.25)) / 4)


def _dropout_model(rate: float) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(rate),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def test_mc_dropout_passes_vary_with_dropout_and_average_flattens():
    mc_dropout = chapter_code.load("04").mc_dropout
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    model = _dropout_model(0.5)
    y_probas = mc_dropout(model, x, 4)
    assert y_probas.shape == (4, 5, 3)
    np.testing.assert_allclose(y_probas.sum(axis=2), 1.0, atol=1e-5)
    assert np.ptp(y_probas, axis=0).max() > 1e-3  # the passes differ
    # the average is never more peaked than its passes are on average (entropy is concave)
    mean_entropy = np.mean([u.entropy(p) for p in y_probas], axis=0)
    assert (u.entropy(y_probas.mean(axis=0)) >= mean_entropy - 1e-9).all()
    still = mc_dropout(_dropout_model(0.0), x, 3)
    assert np.ptp(still, axis=0).max() < 1e-6  # no dropout: every pass the same


def test_figures_draw():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=40)
    labels = rng.integers(0, 10, 40)
    fig = u.reliability_figure({"a": u.reliability(probs, labels)}, title="t")
    assert len(fig.axes) == 2
    images = rng.random((40, 28, 28))
    fig = u.uncertain_images_figure(
        images, labels, probs, probs / 10, [str(i) for i in range(10)], n=3
    )
    assert len(fig.axes) == 6
