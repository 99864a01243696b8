"""Unit tests of dnnbook.probes: gradient norms against a hand computation, activation
statistics, never-positive units and the per-run summaries of chapter 1."""

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import autodiff, probes


def tiny_model(activation="linear"):
    """2 inputs -> Dense(2, activation) -> Dense(2, softmax), with known weights."""
    model = keras.Sequential(
        [
            keras.Input(shape=(2,)),
            keras.layers.Dense(2),
            keras.layers.Activation(activation),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    w1 = np.array([[1.0, -2.0], [0.5, 1.0]], "float32")
    b1 = np.array([0.1, -0.3], "float32")
    w2 = np.array([[2.0, -1.0], [1.0, 3.0]], "float32")
    b2 = np.array([0.0, 0.5], "float32")
    model.set_weights([w1, b1, w2, b2])
    return model, (w1, b1, w2, b2)


def test_gradient_norms_match_hand_computation():
    model, (w1, b1, w2, b2) = tiny_model("relu")
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]], "float32")
    y = np.array([0, 1, 1])
    # forward and backward by hand: mean cross-entropy over the batch
    z1 = x @ w1 + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ w2 + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d2 = (p - np.eye(2)[y]) / len(x)
    g2 = a1.T @ d2
    d1 = (d2 @ w2.T) * (z1 > 0)
    g1 = x.T @ d1
    norms = probes.kernel_gradient_norms(model, x, y)
    assert list(norms["layer"]) == [1, 2]
    np.testing.assert_allclose(norms["norm"], [np.linalg.norm(g1), np.linalg.norm(g2)], rtol=1e-5)


def test_activation_stats_saturation_and_never_positive_units():
    model, (w1, b1, _, _) = tiny_model("relu")
    x = np.array([[1.0, -2.0], [2.0, -3.0], [0.5, -1.0]], "float32")
    z = x @ w1 + b1  # second unit: -2x1 + x2 - 0.3 < 0 on every row -> never positive
    assert (z[:, 1] <= 0).all() and (z[:, 0] > 0).any()
    assert list(probes.never_positive(model, x)) == [False, True]
    stats = probes.activation_stats(model, x)
    a = np.maximum(z, 0)
    assert stats.loc[0, "mean"] == pytest.approx(a.mean(), rel=1e-5)
    assert stats.loc[0, "std"] == pytest.approx(a.std(), rel=1e-5)
    y = np.array([0, 1, 0])
    grads = probes.dead_unit_gradients(model, x, y)
    assert grads.tolist() == [0.0]  # a never-positive ReLU unit gets no gradient
    every = autodiff.gradients(model, x, y)
    total = probes.total_gradient_norm(model, x, y)
    assert total > 0 and total == pytest.approx(
        np.sqrt(sum(np.sum(g**2) for g in every.values())), rel=1e-6
    )
    sig, _ = tiny_model("sigmoid")
    big = np.array([[100.0, 0.0], [0.0, 0.0]], "float32")  # row 1 saturates both units
    assert probes.activation_stats(sig, big).loc[0, "saturated"] == pytest.approx(0.5)


def norms_frame(per_seed_norms, config="c"):
    """A kernel_gradient_norms-like frame per seed: the hidden norms plus an output layer."""
    rows = []
    for seed, norms in enumerate(per_seed_norms):
        for i, v in enumerate([*norms, 1.0]):
            rows.append({"config": config, "seed": seed, "layer": i + 1, "norm": v})
    return pd.DataFrame(rows)


def test_growth_spread_and_by_run():
    frame = norms_frame([[8.0, 4.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    one = frame[frame["seed"] == 0]
    assert probes.first_to_last(one) == pytest.approx(8.0)
    assert probes.growth_per_layer(one) == pytest.approx(2.0)
    assert probes.spread(one) == pytest.approx(8.0)
    both = pd.concat([frame, norms_frame([[1.0, 2.0, 4.0, 8.0]] * 2, config="b")])
    table = probes.by_run(both, probes.growth_per_layer)
    assert list(table.columns) == ["c", "b"] and list(table.index) == [0, 1]  # in order
    np.testing.assert_allclose(table["c"], [2.0, 1.0])
    np.testing.assert_allclose(table["b"], [0.5, 0.5])
    assert probes.spread(norms_frame([[0.0, 1.0, 1.0]])) == float("inf")


def test_at_init_seeds_every_config_alike():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.arange(16) % 3

    def build(activation):
        return lambda: keras.Sequential(
            [
                keras.Input(shape=(4,)),
                keras.layers.Dense(8),
                keras.layers.Activation(activation),
                keras.layers.Dense(8),
                keras.layers.Activation(activation),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )

    configs = {"tanh": build("tanh"), "same": build("tanh"), "relu": build("relu")}
    norms, acts = probes.at_init(configs, x, y, seeds=[1, 2])
    assert len(norms) == 3 * 2 * 3 and len(acts) == 3 * 2 * 2
    a, b = (norms[norms["config"] == c]["norm"].to_numpy() for c in ("tanh", "same"))
    np.testing.assert_allclose(a, b)  # same seed, same builder: same weights
    seed1, seed2 = (norms[(norms["config"] == "tanh") & (norms["seed"] == s)] for s in (1, 2))
    assert not np.allclose(seed1["norm"], seed2["norm"])


def test_never_positive_tracker_counts_units_that_wake_up():
    model = keras.Sequential(
        [
            keras.Input(shape=(2,)),
            keras.layers.Dense(2),
            keras.layers.Activation("relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.set_weights(
        [
            np.array([[1.0, -1.0], [0.0, 0.0]], "float32"),
            np.zeros(2, "float32"),
            np.eye(2, dtype="float32"),
            np.zeros(2, "float32"),
        ]
    )
    x = np.array([[1.0, 0.0], [2.0, 0.0]], "float32")
    tracker = probes.NeverPositive(x)
    assert tracker(model) == 0.5  # the second unit is never positive
    weights = model.get_weights()
    weights[0][0, 1] = 1.0  # wake it up
    model.set_weights(weights)
    assert tracker(model) == 0.0
    assert tracker.woke(model) == {"never": 1, "woke": 1, "woke_share": 1.0}
    report = probes.unit_report(model, tracker, np.array([0, 1]))
    assert report["dead_fraction"] == 0.0 and np.isnan(report["max_grad"])
    assert report["woke"] == 1 and report["net_grad"] > 0
