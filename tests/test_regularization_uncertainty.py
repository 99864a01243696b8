"""Unit tests of dnnbook.regularization on hand-computable inputs (and one tiny dropout model)."""

import math

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import regularization as u


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


def test_mc_predict_mean_and_std_by_hand():
    samples = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # two passes that disagree completely
    mean, std = u.mc_predict(samples)
    np.testing.assert_allclose(mean, [[0.5, 0.5]])
    np.testing.assert_allclose(std, [[0.5, 0.5]])
    with pytest.raises(ValueError):
        u.mc_predict(np.zeros((2, 3)))


def test_entropy_by_hand():
    np.testing.assert_allclose(
        u.entropy(np.array([[0.5, 0.5], [1.0, 0.0]])), [math.log(2), 0.0], atol=1e-9
    )


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


def test_mc_samples_vary_with_dropout_and_not_without():
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    samples = u.mc_samples(_dropout_model(0.5), x, n_samples=4)
    assert samples.shape == (4, 5, 3)
    np.testing.assert_allclose(samples.sum(axis=2), 1.0, atol=1e-5)
    assert np.ptp(samples, axis=0).max() > 1e-3  # the passes differ
    model = _dropout_model(0.5)
    a, b = u.predict_proba(model, x), u.predict_proba(model, x)
    np.testing.assert_array_equal(a, b)  # dropout off: deterministic
    with pytest.raises(ValueError):
        u.mc_samples(model, x, n_samples=0)


def test_compare_mc_returns_two_rows_per_seed():
    x = np.random.default_rng(1).normal(size=(6, 4)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2])
    frame, raw = u.compare_mc({7: _dropout_model(0.3)}, x, y, n_samples=3)
    assert list(frame["method"]) == ["single pass", "MC dropout (3 passes)"]
    assert raw[7]["samples"].shape == (3, 6, 3)
    assert set(frame.columns) >= {"seed", "accuracy", "nll", "ece"}


def test_peakedness_orders_average_below_its_passes():
    passes = np.array([[[0.9, 0.1]], [[0.1, 0.9]]])  # two confident passes that disagree
    raw = {0: {"deterministic": np.array([[0.6, 0.4]]), "samples": passes}}
    table = u.peakedness(raw)
    assert table.loc["one dropout pass", "confidence"] == pytest.approx(0.9)
    assert table.loc["MC average of the passes", "confidence"] == pytest.approx(0.5)
    assert table.loc["single pass (dropout off)", "confidence"] == pytest.approx(0.6)
    assert (
        table.loc["MC average of the passes", "entropy"] >= table.loc["one dropout pass", "entropy"]
    )


def test_mc_pairs_aligns_seeds():
    mc = pd.DataFrame(
        {
            "seed": [1, 1, 2, 2],
            "method": ["single pass", "MC", "single pass", "MC"],
            "nll": [0.5, 0.4, 0.7, 0.6],
        }
    )
    multi, single = u.mc_pairs(mc, "nll")
    np.testing.assert_allclose(multi, [0.4, 0.6])
    np.testing.assert_allclose(single, [0.5, 0.7])
