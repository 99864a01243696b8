"""Unit tests of dnnbook.pretraining: the A/B split and layer reuse (fast, backend-agnostic)."""

import keras
import numpy as np
import pytest

from dnnbook import models, pretraining
from dnnbook.data import Splits

TRAIN, VALID, TEST = 0, 10_000, 20_000  # image ids encode the split they come from


def _splits(n_train=300, n_valid=100, n_test=100, side=4):
    rng = np.random.default_rng(0)

    def part(n, offset):
        x = rng.random((n, side, side)).astype(np.float32)
        x[:, 0, 0] = offset + np.arange(n)  # a unique id per image
        return x, np.arange(n) % 10

    return Splits(
        *part(n_train, TRAIN),
        *part(n_valid, VALID),
        *part(n_test, TEST),
        tuple(f"c{i}" for i in range(10)),
    )


def _ids(x):
    return set(x[:, 0, 0].astype(int).tolist())


def test_split_ab_class_sets_and_sizes():
    s = _splits()
    ab = pretraining.split_ab(s, n_b_train=20, seed=1)
    assert ab.b_classes == (0, 2)
    assert ab.a_classes == (1, 3, 4, 5, 6, 7, 8, 9)
    assert ab.a.class_names == tuple(f"c{i}" for i in ab.a_classes)
    assert ab.b.class_names == ("c0", "c2")
    assert set(ab.a.y_train) == set(range(8)) and set(ab.b.y_train) == {0, 1}
    assert len(ab.b.x_train) == 20
    assert len(ab.a.x_train) == 240 and len(ab.a.x_test) == 80  # all images of the 8 classes
    assert len(ab.b.x_valid) == 20 and len(ab.b.x_test) == 20  # all images of the 2 classes
    # labels follow the images: original class = class list[new label]
    orig = s.y_train[ab.a.x_train[:, 0, 0].astype(int) - TRAIN]
    assert np.array_equal(np.array(ab.a_classes)[ab.a.y_train], orig)
    orig_b = s.y_train[ab.b.x_train[:, 0, 0].astype(int) - TRAIN]
    assert np.array_equal(np.array(ab.b_classes)[ab.b.y_train], orig_b)


def test_split_ab_never_trains_on_test_or_validation_images():
    ab = pretraining.split_ab(_splits(), n_b_train=30, seed=3)
    for task in (ab.a, ab.b):
        assert all(i < VALID for i in _ids(task.x_train))
        assert all(VALID <= i < TEST for i in _ids(task.x_valid))
        assert all(i >= TEST for i in _ids(task.x_test))
    assert not _ids(ab.a.x_train) & _ids(ab.b.x_train)  # A and B share no image


def test_split_ab_b_subset_depends_on_seed_and_is_checked():
    s = _splits()
    one, two = (pretraining.split_ab(s, n_b_train=20, seed=k).b for k in (1, 2))
    assert _ids(one.x_train) != _ids(two.x_train)
    assert _ids(one.x_train) == _ids(pretraining.split_ab(s, n_b_train=20, seed=1).b.x_train)
    with pytest.raises(ValueError, match="n_b_train"):
        pretraining.split_ab(s, n_b_train=61)


def _model_a():
    keras.utils.set_random_seed(0)
    m = models.build_mlp((4, 4), 8, depth=3, width=6)
    return models.compile_classifier(m, "adam")


def test_reuse_layers_copies_weights_and_leaves_original_untouched():
    a = _model_a()
    before = a.get_weights()
    b, reused = pretraining.reuse_layers(a, None, [keras.layers.Dense(2, activation="softmax")])
    assert (
        len(pretraining.dense_positions(b)) == 4 and len(reused) == 7
    )  # Flatten + 3 × (Dense, Activation)
    for old, new in zip(a.layers[:7], reused):
        assert old is not new
        for v_old, v_new in zip(old.get_weights(), new.get_weights()):
            assert np.array_equal(v_old, v_new)
    pretraining.set_trainable(b, reused, True, 0.05)
    x = np.random.default_rng(0).random((64, 4, 4)).astype(np.float32)
    b.fit(x, np.arange(64) % 2, epochs=2, verbose=0)
    assert pretraining.weights_equal(before, a.get_weights())
    assert not pretraining.weights_equal(
        [w for layer in reused for w in layer.get_weights()],
        [w for layer in a.layers[:7] for w in layer.get_weights()],
    )


def test_reuse_lower_layers_only():
    a = _model_a()
    b, reused = pretraining.reuse_layers(a, 1, [keras.layers.Dense(2, activation="softmax")])
    assert [type(layer).__name__ for layer in reused] == ["Flatten", "Dense", "Activation"]
    with pytest.raises(ValueError, match="n_hidden"):
        pretraining.reuse_layers(a, 4)


def test_frozen_layers_are_not_updated_and_unfreezing_works():
    a = _model_a()
    b, reused = pretraining.reuse_layers(a, None, [keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(1).random((64, 4, 4)).astype(np.float32)
    y = np.arange(64) % 2
    frozen = [w for layer in reused for w in layer.get_weights()]
    head = b.layers[-1].get_weights()
    pretraining.set_trainable(b, reused, False, 0.05)
    b.fit(x, y, epochs=2, verbose=0)
    assert pretraining.weights_equal(frozen, [w for layer in reused for w in layer.get_weights()])
    assert not pretraining.weights_equal(head, b.layers[-1].get_weights())
    pretraining.set_trainable(b, reused, True, 0.05)
    b.fit(x, y, epochs=2, verbose=0)
    assert not pretraining.weights_equal(
        frozen, [w for layer in reused for w in layer.get_weights()]
    )


def test_input_shape_helpers():
    x = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28)
    small = pretraining.downscale(x, 14)
    assert small.shape == (2, 14, 14) and np.isclose(small[0, 0, 0], x[0, :2, :2].mean())
    padded = pretraining.pad_to(small, 28)
    assert padded.shape == (2, 28, 28) and padded[:, :7].sum() == 0
    assert np.array_equal(padded[:, 7:21, 7:21], small)
    a = _model_a()
    big = pretraining.upscale_input(a, (2, 2))
    assert big.predict(np.ones((3, 2, 2), np.float32), verbose=0).shape == (3, 8)
    with pytest.raises(ValueError):
        pretraining.downscale(x, 5)


def test_configs_compiled_once_train_what_fresh_models_train():
    import pandas as pd

    from dnnbook import data

    d = data.load("digits", n_train=128, n_valid=64, n_test=64, seed=0)
    a = models.compile_classifier(
        models.build_mlp(d.input_shape, d.n_classes, depth=2, width=16), "adam"
    )
    a.fit(d.x_train, d.y_train, epochs=1, verbose=0)
    a_weights = a.get_weights()
    configs = {
        "scratch": lambda s: (
            lambda: (models.build_mlp(d.input_shape, d.n_classes, depth=2, width=16), [])
        ),
        "reused": lambda s: (
            lambda: pretraining.reuse_layers(a, 1, [keras.layers.Dense(10, activation="softmax")])
        ),
    }
    schedule = pretraining.Schedule(frozen_epochs=1, tuned_epochs=2, batch_size=16)
    shared = pretraining.compare_runs(configs, lambda s: d, [1, 2], schedule)
    fresh = pd.concat(
        [
            pretraining.train_schedule(configs[n](s), d, schedule, seed=s).assign(config=n)
            for s in (1, 2)
            for n in configs
        ],
        ignore_index=True,
    )
    cols = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_allclose(shared[cols].to_numpy(), fresh[cols].to_numpy(), rtol=1e-6)
    assert not np.allclose(
        shared.loc[0, cols].to_numpy(float), shared.loc[2, cols].to_numpy(float)
    )  # seeds differ
    assert pretraining.weights_equal(
        a.get_weights(), a_weights
    )  # the source model is never trained


def test_compiled_models_are_shared_across_calls_and_checked():
    from dnnbook import data

    d = data.load("digits", n_train=96, n_valid=32, n_test=32, seed=0)
    configs = {
        "scratch": lambda s: (
            lambda: (models.build_mlp(d.input_shape, d.n_classes, depth=2, width=16), [])
        )
    }
    schedule = pretraining.Schedule(frozen_epochs=0, tuned_epochs=2, batch_size=16)
    cache: dict = {}
    first = pretraining.compare_runs(configs, lambda s: d, [1], schedule, compiled=cache)
    model = cache[("scratch", schedule)]["phases"][0][0]
    again = pretraining.compare_runs(configs, lambda s: d, [1], schedule, compiled=cache)
    assert cache[("scratch", schedule)]["phases"][0][0] is model  # compiled once for both calls
    cols = ["loss", "val_loss", "test_accuracy"]
    np.testing.assert_allclose(again[cols].to_numpy(), first[cols].to_numpy(), rtol=1e-6)
    wider = {
        "scratch": lambda s: (
            lambda: (models.build_mlp(d.input_shape, d.n_classes, depth=2, width=8), [])
        )
    }
    with pytest.raises(ValueError, match="another architecture"):
        pretraining.compare_runs(wider, lambda s: d, [1], schedule, compiled=cache)
