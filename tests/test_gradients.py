"""Unit tests of dnnbook.gradients: gradient norms against a hand computation, activation stats, dead units."""

import keras
import numpy as np
import pytest

from dnnbook import autodiff, gradients


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
    norms = gradients.layer_gradient_norms(model, x, y)
    assert list(norms["layer"]) == [1, 2]
    np.testing.assert_allclose(norms["norm"], [np.linalg.norm(g1), np.linalg.norm(g2)], rtol=1e-5)
    assert gradients.first_to_last(
        gradients.layer_gradient_norms(model, x, y).iloc[[0, 0, 1]]
    ) == pytest.approx(1.0)


def test_activation_stats_and_dead_units():
    model, (w1, b1, _, _) = tiny_model("relu")
    x = np.array([[1.0, -2.0], [2.0, -3.0], [0.5, -1.0]], "float32")
    z = x @ w1 + b1  # second unit: -2x1 + x2 - 0.3 < 0 on every row -> dead
    assert (z[:, 1] <= 0).all() and (z[:, 0] > 0).any()
    dead = gradients.dead_units(model, x)
    assert dead.loc[0, "dead"] == 1 and dead.loc[0, "dead_fraction"] == 0.5
    stats = gradients.activation_stats(model, x)
    a = np.maximum(z, 0)
    assert stats.loc[0, "mean"] == pytest.approx(a.mean(), rel=1e-5)
    assert stats.loc[0, "std"] == pytest.approx(a.std(), rel=1e-5)
    grads = gradients.dead_unit_gradients(model, x, np.array([0, 1, 0]))
    assert list(grads["unit"]) == [1] and grads.loc[0, "grad_norm"] == 0.0
    every = autodiff.gradients(model, x, np.array([0, 1, 0]))
    total = gradients.total_gradient_norm(model, x, np.array([0, 1, 0]))
    assert total > 0 and total == pytest.approx(
        np.sqrt(sum(np.sum(g**2) for g in every.values())), rel=1e-6
    )


def test_sigmoid_chain_and_saturation():
    assert gradients.sigmoid_derivative(0.0) == pytest.approx(0.25)
    chain = gradients.sigmoid_chain([1, 2])
    assert chain.loc[0, "gradient"] == pytest.approx(0.25)
    assert chain.loc[1, "gradient"] == pytest.approx(0.25 * gradients.sigmoid_derivative(0.5))
    assert (chain["gradient"] <= chain["bound"]).all()
    model, _ = tiny_model("sigmoid")
    big = np.array(
        [[100.0, 0.0], [0.0, 0.0]], "float32"
    )  # first row saturates both units, second none
    assert gradients.saturated_fraction(model, big) == pytest.approx(0.5)


def test_bn_parameters_and_batch_dependence():
    model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            keras.layers.Dense(5, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    table = gradients.bn_parameters(model)
    row = table.iloc[0]
    assert (row["inputs"], row["parameters"], row["trainable"], row["non_trainable"]) == (
        5,
        20,
        10,
        10,
    )
    x = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    dep = gradients.batch_dependence(model, x, size=8)
    assert dep["inference"] < 1e-6 < dep["training"]
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_run_seeds_trains_fresh_models_and_probes_each():
    from dnnbook import data

    d = data.load("digits", n_train=64, n_valid=16, n_test=16, seed=0)
    make = gradients.compiled(
        lambda: gradients.deep_mlp("ReLU + He", d.input_shape, d.n_classes, depth=2, width=5),
        lambda: keras.optimizers.Adam(learning_rate=0.1),
    )
    a, b = make(), make()
    assert a is not b and a.optimizer is not b.optimizer
    history, probed = gradients.run_seeds(
        {"relu": make}, d, [1, 2], epochs=2, probe=lambda m: gradients.dead_units(m, d.x_valid)
    )
    assert len(history) == 4 and "test_accuracy" in history.columns
    assert set(probed["seed"]) == {1, 2} and list(probed["config"].cat.categories) == ["relu"]


@pytest.mark.parametrize("compile_from", [1, 10])  # compiled (TensorFlow) and eager passes
def test_epoch_probe_matches_the_one_off_probes(compile_from):
    from dnnbook import data

    d = data.load("digits", n_train=64, n_valid=32, n_test=16, seed=0)
    model = gradients.compiled(
        lambda: gradients.deep_mlp("ReLU + He", d.input_shape, d.n_classes, depth=3, width=8),
        lambda: keras.optimizers.SGD(learning_rate=0.05),
    )()
    probe = gradients.EpochProbe(d.x_valid, d.y_valid, compile_from=compile_from)
    model.fit(d.x_train, d.y_train, epochs=2, batch_size=16, verbose=0, callbacks=[probe])
    assert list(probe.frame["epoch"].unique()) == [1, 2] and len(probe.frame) == 2 * 4
    last = probe.frame[probe.frame["epoch"] == 2].reset_index(drop=True)
    np.testing.assert_allclose(
        last["grad_norm"],
        gradients.layer_gradient_norms(model, d.x_valid, d.y_valid)["norm"],
        rtol=1e-4,
    )
    acts = probe.activations[probe.activations["epoch"] == 2].reset_index(drop=True)
    np.testing.assert_allclose(
        acts[["mean", "std"]],
        gradients.activation_stats(model, d.x_valid)[["mean", "std"]],
        rtol=1e-4,
        atol=1e-6,
    )
    first = probe.frame[probe.frame["epoch"] == 1]["grad_norm"].to_numpy()
    assert not np.allclose(first, last["grad_norm"].to_numpy())  # measured again after each epoch
