"""Chapter 2's transfer learning: the A/B split (dnnbook.subsets), the reuse and freezing code
of the chapter (loaded from it), and the phased runs of dnnbook.finetune."""

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import data, finetune, subsets
from dnnbook.data import Splits
from tests import chapter_code

TRAIN, VALID, TEST = 0, 10_000, 20_000  # image ids encode the split they come from
CH = chapter_code.load("02")


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


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_split_ab_class_sets_and_sizes():
    s = _splits()
    ab = subsets.split_ab(s, n_b_train=20, seed=1)
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
    ab = subsets.split_ab(_splits(), n_b_train=30, seed=3)
    for task in (ab.a, ab.b):
        assert all(i < VALID for i in _ids(task.x_train))
        assert all(VALID <= i < TEST for i in _ids(task.x_valid))
        assert all(i >= TEST for i in _ids(task.x_test))
    assert not _ids(ab.a.x_train) & _ids(ab.b.x_train)  # A and B share no image


def test_split_ab_b_subset_depends_on_seed_and_is_checked():
    s = _splits()
    one, two = (subsets.split_ab(s, n_b_train=20, seed=k).b for k in (1, 2))
    assert _ids(one.x_train) != _ids(two.x_train)
    assert _ids(one.x_train) == _ids(subsets.split_ab(s, n_b_train=20, seed=1).b.x_train)
    with pytest.raises(ValueError, match="n_b_train"):
        subsets.split_ab(s, n_b_train=61, seed=0)


def test_few_labels_keeps_n_training_images_and_other_splits():
    x = np.arange(50, dtype=np.float32).reshape(50, 1, 1)
    s = Splits(
        x, np.arange(50) % 10, x[:5], np.zeros(5, int), x[:7], np.zeros(7, int), tuple("abcdefghij")
    )
    f = subsets.few_labels(s, 12, seed=0)
    assert len(f.x_train) == 12 and len(set(f.x_train.ravel())) == 12
    assert np.array_equal(f.y_train, f.x_train.ravel().astype(int) % 10)
    assert f.x_test is s.x_test and f.x_valid is s.x_valid
    with pytest.raises(ValueError):
        subsets.few_labels(s, 51, seed=0)


def _model_a(shape=(4, 4), n_classes=8, widths=(6, 6, 6)):
    keras.utils.set_random_seed(0)
    return CH.compiled(CH.mlp(shape, n_classes, widths))


def _layer_weights(layers):
    return [w for layer in layers for w in layer.get_weights()]


def test_reuse_lower_copies_weights_and_leaves_original_untouched():
    a = _model_a()
    before = a.get_weights()
    b, reused = CH.reuse_lower(a, 3, [keras.layers.Dense(2, activation="softmax")])
    assert [type(layer).__name__ for layer in reused] == ["Flatten", "Dense", "Dense", "Dense"]
    for old, new in zip(a.layers[:4], reused):
        assert old is not new and _same(old.get_weights(), new.get_weights())
    CH.compiled(b, 0.05)
    x = np.random.default_rng(0).random((64, 4, 4)).astype(np.float32)
    b.fit(x, np.arange(64) % 2, epochs=2, verbose=0)
    assert _same(before, a.get_weights())
    assert not _same(_layer_weights(reused), _layer_weights(a.layers[:4]))
    one, kept = CH.reuse_lower(a, 1, [])
    assert [type(layer).__name__ for layer in kept] == ["Flatten", "Dense"]


def test_reuse_upper_copies_the_upper_layers_under_a_new_first_layer():
    a = _model_a()
    new, reused = CH.reuse_upper(
        a, keras.layers.Dense(6, activation="relu"), [keras.layers.Dense(2, activation="softmax")]
    )
    assert len(reused) == 2 and all(isinstance(layer, keras.layers.Dense) for layer in reused)
    for old, copy in zip(a.layers[2:4], reused):
        assert old is not copy and _same(old.get_weights(), copy.get_weights())
    assert new.output_shape == (None, 2)


def test_frozen_then_tuned_freezes_the_reused_layers_then_trains_them():
    a = _model_a()
    b, reused = CH.reuse_lower(a, 3, [keras.layers.Dense(2, activation="softmax")])
    (frozen, e1), (tuned, e2) = CH.frozen_then_tuned(2, 3, 0.05, 0.01)(b, reused)
    assert (e1, e2) == (2, 3) and frozen is b and tuned is not b
    x = np.random.default_rng(1).random((64, 4, 4)).astype(np.float32)
    y = np.arange(64) % 2
    start, head = _layer_weights(reused), b.layers[-1].get_weights()
    frozen.fit(x, y, epochs=2, verbose=0)
    assert _same(start, _layer_weights(reused)) and not _same(head, b.layers[-1].get_weights())
    assert all(layer.trainable for layer in tuned.layers)
    assert float(keras.ops.convert_to_numpy(tuned.optimizer.learning_rate)) == pytest.approx(0.01)
    tuned.set_weights(frozen.get_weights())
    tuned.fit(x, y, epochs=2, verbose=0)
    assert not _same(start, _layer_weights(tuned.layers[:4]))


def _digits(n_train=128):
    return data.load("digits", n_train=n_train, n_valid=64, n_test=64, seed=0)


def test_configs_compiled_once_train_what_fresh_models_train():
    d = _digits()
    a = CH.compiled(CH.mlp(d.input_shape, d.n_classes, (16, 16)))
    a.fit(d.x_train, d.y_train, epochs=1, verbose=0)
    a_weights = a.get_weights()
    configs = {
        "scratch": (lambda: (CH.mlp(d.input_shape, 10, (16, 16)), []), CH.all_trainable(3)),
        "reused": (
            lambda: CH.reuse_lower(a, 1, [keras.layers.Dense(10, activation="softmax")]),
            CH.frozen_then_tuned(1, 2),
        ),
    }
    shared = finetune.compare(configs, lambda s: d, [1, 2], batch_size=16)
    fresh = pd.concat(
        [
            finetune.train(*configs[n], d, seed=s, batch_size=16).assign(config=n)
            for s in (1, 2)
            for n in configs
        ],
        ignore_index=True,
    )
    cols = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_allclose(shared[cols].to_numpy(), fresh[cols].to_numpy(), rtol=1e-6)
    assert (shared["epoch"] == 3).all() and list(shared["config"].cat.categories) == list(configs)
    assert not np.allclose(
        shared.loc[0, cols].to_numpy(float), shared.loc[2, cols].to_numpy(float)
    )  # seeds differ
    assert _same(a.get_weights(), a_weights)  # the source model is never trained


def test_compiled_phases_are_shared_across_calls_and_checked():
    d = _digits(96)
    configs = {"scratch": (lambda: (CH.mlp(d.input_shape, 10, (16, 16)), []), CH.all_trainable(2))}
    cache: dict = {}
    first = finetune.compare(configs, lambda s: d, [1], batch_size=16, compiled=cache)
    model = cache["scratch"]["phases"][0][0]
    again = finetune.compare(configs, lambda s: d, [1], batch_size=16, compiled=cache)
    assert cache["scratch"]["phases"][0][0] is model  # compiled once for both calls
    cols = ["loss", "val_loss", "test_accuracy"]
    np.testing.assert_allclose(again[cols].to_numpy(), first[cols].to_numpy(), rtol=1e-6)
    wider = {"scratch": (lambda: (CH.mlp(d.input_shape, 10, (8, 8)), []), CH.all_trainable(2))}
    with pytest.raises(ValueError, match="another architecture"):
        finetune.compare(wider, lambda s: d, [1], batch_size=16, compiled=cache)


def test_gain_table_and_figures_show_the_paired_gain():
    import matplotlib

    matplotlib.use("Agg")
    from dnnbook import gains
    from dnnbook.image_grids import image_rows

    base = np.array([0.90, 0.92, 0.91, 0.93])
    arms = {"scratch": base, "reused": base + np.array([0.01, 0.02, 0.01, 0.02])}
    df = pd.DataFrame(
        [
            {"config": n, "seed": s, "epoch": 1, "test_accuracy": v}
            for n, values in arms.items()
            for s, v in enumerate(values)
        ]
    )
    df["config"] = pd.Categorical(df["config"], categories=list(arms), ordered=True)
    table = gains.gain_table(df, "scratch")
    assert table.loc["reused", "gain (points)"] == "+1.50"
    assert table.loc["scratch", "gain (points)"] == "—" and table["seeds"].tolist() == [4, 4]
    assert len(gains.paired_plot(df, "scratch").axes) == 2
    fig = image_rows({"a": np.zeros((3, 4, 4)), "b": np.ones((2, 4, 4))}, title="t")
    assert len(fig.axes) == 6 and fig.axes[3].get_ylabel() == "b"
