"""Unit tests of dnnbook.regularization: label noise, the loss split, weight statistics, max-norm."""

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import regularization as reg
from dnnbook.data import Splits


def test_flip_labels_flips_exactly_the_share_to_other_classes():
    y = np.repeat(np.arange(10), 20)
    noisy, flipped = reg.flip_labels(y, 0.25, 10, seed=3)
    assert flipped.sum() == 50
    assert (noisy[flipped] != y[flipped]).all() and (noisy[~flipped] == y[~flipped]).all()
    assert noisy.min() >= 0 and noisy.max() <= 9
    again, _ = reg.flip_labels(y, 0.25, 10, seed=3)
    np.testing.assert_array_equal(noisy, again)
    with pytest.raises(ValueError):
        reg.flip_labels(y, 1.5, 10, seed=0)


def test_unit_norms_by_hand():
    kernel = np.array([[3.0, 0.0], [4.0, 1.0]])  # columns = units: norms 5 and 1
    np.testing.assert_allclose(reg.unit_norms(kernel), [5.0, 1.0])


def _model(**kw) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            keras.layers.Dense(4, **kw),
            keras.layers.Dense(2, activation="softmax", **kw),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy"
    )
    return model


def test_penalty_is_l2_sum_by_hand_and_zero_without_regularizer():
    model = _model(kernel_regularizer=keras.regularizers.L2(0.1))
    expected = sum(0.1 * float((k**2).sum()) for k in reg.kernels(model))
    assert reg.penalty(model) == pytest.approx(expected, rel=1e-5)
    assert reg.penalty(_model()) == 0.0


def test_loss_parts_add_up():
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = np.arange(16) % 2
    parts = reg.loss_parts(
        _model(kernel_regularizer=reg.regularizer("l1_l2", l1=0.01, l2=0.01)), x, y
    )
    assert parts["penalty"] > 0
    assert parts["reported"] == pytest.approx(parts["data"] + parts["penalty"], abs=1e-4)


def test_loss_parts_add_up_where_the_model_gives_a_label_almost_no_probability():
    """Logits 60 apart: the true class gets about e^-60. Keras's reported loss takes 60 from the
    logits under TensorFlow and 16.1 (probabilities clipped at 1e-7) under JAX and PyTorch; the
    data part must be computed the same way, whatever the backend."""
    model = _model(kernel_regularizer=keras.regularizers.L2(1e-3))
    w = [np.zeros_like(v) for v in model.get_weights()]
    w[-1][:] = [60.0, 0.0]  # the last bias: class 0 always, by 60 logits
    model.set_weights(w)
    x = np.zeros((8, 3), dtype="float32")
    y = np.ones(8, dtype="int64")  # every label is the other class
    parts = reg.loss_parts(model, x, y)
    assert parts["data"] > 16  # a loss dominated by the near-zero probabilities
    assert parts["reported"] == pytest.approx(parts["data"] + parts["penalty"], abs=1e-4)


def test_l1_l2_passes_both_factors():
    r = reg.regularizer("l1_l2", l1=0.5, l2=0.25)
    w = np.array([[1.0, -2.0]], dtype="float32")
    assert float(keras.ops.convert_to_numpy(r(w))) == pytest.approx(0.5 * 3 + 0.25 * 5)
    assert reg.regularizer("none") is None
    with pytest.raises(ValueError):
        reg.regularizer("l3")


def test_weight_stats_and_max_norm_bound_after_training():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32") * 10
    y = np.arange(32) % 2
    model = _model(kernel_constraint=keras.constraints.MaxNorm(0.5, axis=0))
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    stats = reg.weight_stats(model)
    assert stats["max_unit_norm"] <= 0.5 * (1 + 1e-5)
    assert 0.0 <= stats["near_zero"] <= 1.0 and stats["weight_norm"] > 0


def test_penalty_is_logged_every_epoch():
    from dnnbook import data, experiments

    d = data.load("digits", n_train=64, n_valid=16, n_test=16, seed=0)
    make = reg.factory(d, depth=1, width=8, reg="l2", l2=0.1)
    frame, model = experiments.train(make, d, seed=0, epochs=2, epoch_logs={"penalty": reg.penalty})
    assert len(frame["penalty"]) == 2 and (frame["penalty"] > 0).all()
    assert frame["penalty"].iloc[-1] == pytest.approx(reg.penalty(model))


def test_diverged_detects_nan_and_chance_loss():
    h = pd.DataFrame(
        {
            "config": ["a"] * 2 + ["b"] * 2 + ["c"] * 2,
            "seed": [0] * 6,
            "epoch": [1, 2] * 3,
            "loss": [1.0, np.nan, 3.0, 2.5, 2.0, 0.5],
        }
    )
    d = reg.diverged(h, chance_loss=np.log(10))
    assert d[("a", 0)] and d[("b", 0)] and not d[("c", 0)]


def test_with_label_noise_keeps_validation_and_test_clean():
    y = np.arange(20) % 10
    s = Splits(
        np.zeros((20, 2)), y, np.zeros((5, 2)), y[:5], np.zeros((5, 2)), y[:5], tuple("abcdefghij")
    )
    n = reg.with_label_noise(s, 0.5, seed=0)
    assert (n.y_train != y).sum() == 10
    assert n.y_valid is s.y_valid and n.y_test is s.y_test


def test_after_training_measures_each_run_with_its_own_weights():
    from dnnbook import data, experiments

    d = data.load("digits", n_train=120, n_valid=60, n_test=60, seed=0)
    configs = {
        "plain": reg.factory(d, depth=1, width=16),
        "dropout": reg.factory(d, depth=1, width=16, dropout=0.5),
        "l2": reg.factory(d, depth=1, width=16, reg="l2", l2=0.01),
    }
    models: dict = {}
    history = experiments.run(configs, d, [0, 1], epochs=2, batch_size=32, models=models)
    after = reg.after_training(models, d, history)
    assert len(after) == 6 and list(after["config"].cat.categories) == list(configs)
    row = after.set_index(["config", "seed"]).loc[("dropout", 1)]
    loss, acc = reg.cross_entropy(models[("dropout", 1)], d.x_valid, d.y_valid)
    assert row["val_loss"] == pytest.approx(loss) and row["val_accuracy"] == pytest.approx(acc)
    _, test_acc = reg.cross_entropy(models[("dropout", 1)], d.x_test, d.y_test)
    assert row["test_accuracy"] == pytest.approx(test_acc)
    assert (after["gap"] == after["train_accuracy"] - after["val_accuracy"]).all()
    last = history[(history["config"] == "dropout") & (history["seed"] == 1)]["loss"].iloc[-1]
    assert row["fit_loss"] == pytest.approx(last)
    indexed = after.set_index(["config", "seed"])
    # dropout on changes the training loss only where there is dropout; only l2 has a penalty
    assert indexed.loc[("plain", 0), "train_loss_dropout_on"] == pytest.approx(
        indexed.loc[("plain", 0), "train_loss"], rel=1e-5
    )
    assert indexed.loc[("dropout", 0), "train_loss_dropout_on"] != pytest.approx(
        indexed.loc[("dropout", 0), "train_loss"], rel=1e-3
    )
    assert (indexed.loc["l2", "penalty"] > 0).all() and (indexed.loc["plain", "penalty"] == 0).all()
    assert "fit_loss" not in reg.after_training(models, d).columns


def test_changes_pairs_by_seed():
    frame = pd.DataFrame(
        {
            "config": ["none"] * 3 + ["x"] * 3,
            "seed": [0, 1, 2] * 2,
            "acc": [0.5, 0.6, 0.7, 0.6, 0.7, 0.8],
        }
    )
    table = reg.changes(frame, "acc")
    assert table.loc["x", "change"] == pytest.approx(0.1)
    assert table.loc["x", "low"] == pytest.approx(0.1) and table.loc["none", "change"] == 0
    assert table.loc["x", "acc"] == pytest.approx(0.7)
