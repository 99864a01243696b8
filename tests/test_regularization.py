"""Chapter 4's plumbing and Keras code: label noise, weight statistics, the chapter's builder,
its penalty and loss split, its per-run measurements and the divergence test."""

import functools

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import weights
from dnnbook.data import Splits
from dnnbook.noisy_labels import flip_labels, with_label_noise
from tests import chapter_code


@pytest.fixture(scope="module")
def ch():
    return chapter_code.load("04")


def test_flip_labels_flips_exactly_the_share_to_other_classes():
    y = np.repeat(np.arange(10), 20)
    noisy, flipped = flip_labels(y, 0.25, 10, seed=3)
    assert flipped.sum() == 50
    assert (noisy[flipped] != y[flipped]).all() and (noisy[~flipped] == y[~flipped]).all()
    assert noisy.min() >= 0 and noisy.max() <= 9
    again, _ = flip_labels(y, 0.25, 10, seed=3)
    np.testing.assert_array_equal(noisy, again)
    with pytest.raises(ValueError):
        flip_labels(y, 1.5, 10, seed=0)


def test_with_label_noise_keeps_validation_and_test_clean():
    y = np.arange(20) % 10
    s = Splits(
        np.zeros((20, 2)), y, np.zeros((5, 2)), y[:5], np.zeros((5, 2)), y[:5], tuple("abcdefghij")
    )
    n = with_label_noise(s, 0.5, seed=0)
    assert (n.y_train != y).sum() == 10
    assert n.y_valid is s.y_valid and n.y_test is s.y_test


def test_unit_norms_by_hand():
    kernel = np.array([[3.0, 0.0], [4.0, 1.0]])  # columns = units: norms 5 and 1
    np.testing.assert_allclose(weights.unit_norms(kernel), [5.0, 1.0])


def test_weight_stats_by_hand():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(2)])
    model.layers[0].kernel.assign(np.array([[3.0, 0.0], [4.0, 1e-4]], dtype="float32"))
    s = weights.weight_stats(model, tol=1e-3)
    assert s["weight_norm"] == pytest.approx(np.sqrt(9 + 16 + 1e-8), rel=1e-6)
    assert s["near_zero"] == pytest.approx(0.5)  # 0 and 1e-4
    assert s["max_unit_norm"] == pytest.approx(5.0, rel=1e-6)


def test_mlp_builds_the_layers_it_is_given(ch):
    l2 = keras.regularizers.l2(1e-3)
    model = ch.mlp(2, 16, dropout=0.3, kernel_regularizer=l2)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.units for d in dense] == [16, 16, 10] and [d.rate for d in drops] == [0.3, 0.3]
    assert all(d.kernel_regularizer is l2 for d in dense)
    assert dense[-1].get_config()["activation"] == "softmax"
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-3)
    bounded = ch.mlp(1, 8, kernel_constraint=keras.constraints.MaxNorm(0.5, axis=0))
    assert all(
        isinstance(d.kernel_constraint, keras.constraints.MaxNorm) for d in bounded.layers[1:]
    )
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in bounded.layers)
    sgd = ch.mlp(1, 8, optimizer=keras.optimizers.SGD(learning_rate=0.3))
    assert isinstance(sgd.optimizer, keras.optimizers.SGD)


def test_penalty_is_the_l2_sum_by_hand_and_zero_without_a_regularizer(ch):
    keras.utils.set_random_seed(0)
    model = ch.mlp(1, 4, kernel_regularizer=keras.regularizers.l2(0.1))
    expected = sum(0.1 * float((k**2).sum()) for k in weights.kernels(model))
    assert ch.penalty(model) == pytest.approx(expected, rel=1e-5)
    assert ch.penalty(ch.mlp(1, 4)) == 0.0


def test_l1_l2_defaults_to_zero_in_keras_3():
    w = np.ones((3, 2), dtype="float32")
    assert float(keras.regularizers.l1_l2()(w)) == 0.0
    both = float(keras.regularizers.l1_l2(l1=0.5, l2=0.25)(w))
    assert both == pytest.approx(6 * 0.5 + 6 * 0.25)


def _images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28)).astype("float32"), np.arange(n) % 10


def test_loss_parts_add_up_and_max_norm_adds_no_term(ch):
    x, y = _images(32)
    keras.utils.set_random_seed(0)
    penalized = ch.mlp(1, 8, kernel_regularizer=keras.regularizers.l1_l2(l1=0.01, l2=0.01))
    parts = ch.loss_parts(penalized, x, y)
    assert parts["penalty"] > 0 and parts["loss terms"] == 2
    assert parts["reported"] == pytest.approx(parts["data"] + parts["penalty"], abs=1e-4)
    bounded = ch.mlp(1, 8, kernel_constraint=keras.constraints.MaxNorm(0.5, axis=0))
    bounded.fit(x, y, epochs=2, batch_size=8, verbose=0)
    parts = ch.loss_parts(bounded, x, y)
    assert parts["loss terms"] == 0 and parts["penalty"] == 0.0
    assert parts["reported"] == pytest.approx(parts["data"], abs=1e-4)
    assert weights.weight_stats(bounded)["max_unit_norm"] <= 0.5 * (1 + 1e-5)


def test_loss_parts_add_up_where_the_model_gives_a_label_almost_no_probability(ch):
    """Logits 60 apart: the true class gets about e^-60. Keras's reported loss takes 60 from the
    logits under TensorFlow and 16.1 (probabilities clipped at 1e-7) under JAX and PyTorch; the
    data part must be computed the same way, whatever the backend."""
    model = ch.mlp(1, 4, kernel_regularizer=keras.regularizers.l2(1e-3))
    w = [np.zeros_like(v) for v in model.get_weights()]
    w[-1][:] = 0.0
    w[-1][0] = 60.0  # the last bias: class 0 always, by 60 logits
    model.set_weights(w)
    x = np.zeros((8, 28, 28), dtype="float32")
    y = np.ones(8, dtype="int64")  # every label is another class
    parts = ch.loss_parts(model, x, y)
    assert parts["data"] > 16  # a loss dominated by the near-zero probabilities
    assert parts["reported"] == pytest.approx(parts["data"] + parts["penalty"], abs=1e-4)


def test_measure_reads_each_run_with_its_own_weights(ch):
    from dnnbook import calibration, data, experiments

    d = data.load("fashion_mnist", n_train=200, n_valid=100, n_test=100, seed=0)
    configs = {
        "plain": functools.partial(ch.mlp, 1, 16),
        "dropout": functools.partial(ch.mlp, 1, 16, dropout=0.5),
    }
    models: dict = {}
    history = experiments.run(configs, d, [0, 1], epochs=2, batch_size=32, models=models)
    after = ch.measure(models, d, history)
    assert len(after) == 4 and list(after["config"].cat.categories) == list(configs)
    row = after.set_index(["config", "seed"]).loc[("dropout", 1)]
    probs = keras.ops.convert_to_numpy(models[("dropout", 1)](d.x_valid))
    assert row["val_loss"] == pytest.approx(calibration.nll(probs, d.y_valid))
    assert row["val_accuracy"] == pytest.approx(calibration.accuracy(probs, d.y_valid))
    assert (after["gap"] == after["train_accuracy"] - after["val_accuracy"]).all()
    last = history[(history["config"] == "dropout") & (history["seed"] == 1)]["loss"].iloc[-1]
    assert row["fit_loss"] == pytest.approx(last)
    plain = after.set_index(["config", "seed"]).loc[("plain", 0)]
    assert plain["train_loss_dropout_on"] == pytest.approx(plain["train_loss"], rel=1e-5)
    assert row["train_loss_dropout_on"] != pytest.approx(row["train_loss"], rel=1e-3)
    table = ch.by_seed(after, "gap")
    assert table.shape == (2, 2) and list(table.columns) == list(configs)
    assert ch.summary(after, ("gap",), ["plain"]).shape == (1, 2)


def test_changes_pairs_by_seed(ch):
    frame = pd.DataFrame(
        {
            "config": ["none"] * 3 + ["x"] * 3,
            "seed": [0, 1, 2] * 2,
            "acc": [0.5, 0.6, 0.7, 0.6, 0.7, 0.8],
        }
    )
    table = ch.changes(frame, "acc")
    assert table.loc["x", "change"] == pytest.approx(0.1)
    assert table.loc["x", "low"] == pytest.approx(0.1) and table.loc["none", "change"] == 0
    assert table.loc["x", "acc"] == pytest.approx(0.7)


def test_diverged_detects_nan_and_chance_loss(ch):
    h = pd.DataFrame(
        {
            "config": ["a"] * 2 + ["b"] * 2 + ["c"] * 2,
            "seed": [0] * 6,
            "epoch": [1, 2] * 3,
            "loss": [1.0, np.nan, 3.0, 2.5, 2.0, 0.5],
        }
    )
    d = ch.diverged(h, chance_loss=np.log(10))
    assert d[("a", 0)] and d[("b", 0)] and not d[("c", 0)]
