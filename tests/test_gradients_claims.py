"""The Keras code chapter 1 teaches, loaded from the chapter (tests/chapter_code.py): its deep
MLP builder, the sigmoid chain and the batch dependence of BN."""

import functools

import keras
import numpy as np
import pytest

from tests import chapter_code


@pytest.fixture(scope="module")
def ch():
    return chapter_code.load("01")


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_deep_mlp_blocks_and_bn_placements(ch):
    plain = ch.deep_mlp(2, 8, "relu", "he_normal")
    assert layer_types(plain) == ["Flatten", "Dense", "Activation", "Dense", "Activation", "Dense"]
    assert plain.output_shape == (None, 10) and plain.layers[-1].activation.__name__ == "softmax"
    before = ch.deep_mlp(2, 8, "relu", "he_normal", batch_norm="before", bn_first=True)
    assert layer_types(before)[:5] == [
        "Flatten",
        "BatchNormalization",
        "Dense",
        "BatchNormalization",
        "Activation",
    ]
    dense = [layer for layer in before.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.use_bias for d in dense] == [False, False, True]  # β replaces the hidden biases
    leaky = functools.partial(keras.layers.LeakyReLU, negative_slope=0.2)
    after = ch.deep_mlp(1, 8, leaky, "he_normal", batch_norm="after")
    assert layer_types(after) == ["Flatten", "Dense", "LeakyReLU", "BatchNormalization", "Dense"]
    assert after.layers[2].negative_slope == pytest.approx(0.2)
    # the same parameters a block of Dense with bias + BN has, less one bias per unit
    assert (
        ch.deep_mlp(1, 8, "relu", "he_normal", batch_norm="after").count_params()
        - ch.deep_mlp(1, 8, "relu", "he_normal", batch_norm="before").count_params()
        == 8
    )


def test_deep_mlp_draws_every_layer_afresh_from_one_initializer(ch):
    """An unseeded initializer object draws the same values at every call: deep_mlp clones
    it per layer, so equal-shaped hidden kernels differ."""
    keras.utils.set_random_seed(0)
    model = ch.deep_mlp(3, 16, "tanh", keras.initializers.RandomNormal(stddev=1.0))
    kernels = [lay.get_weights()[0] for lay in model.layers if isinstance(lay, keras.layers.Dense)]
    k2, k3 = kernels[1:3]
    assert k2.shape == k3.shape and not np.allclose(k2, k3)
    assert 0.8 < k2.std() < 1.2  # std 1, as asked


def test_sigmoid_chain(ch):
    chain = ch.sigmoid_chain(3)
    s = ch.sigmoid(0.5)
    assert chain[0] == pytest.approx(0.25)
    assert chain[1] == pytest.approx(0.25 * s * (1 - s))
    assert (chain <= 0.25 ** np.arange(1, 4)).all()


def test_batch_dependence_restores_the_model(ch):
    model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            keras.layers.Dense(5, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    dep = ch.batch_dependence(model, x, size=8)
    assert dep["inference"] < 1e-6 < dep["training"]
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
