"""Chapter 0's Keras code, loaded from the chapter: the reference MLP and softmax regression are
what the prose says, compile for integer labels and train in lockstep."""

import keras
import pytest

from dnnbook.engine import stackable
from tests import chapter_code


@pytest.fixture(scope="module")
def ch():
    return chapter_code.load("00")


def test_reference_mlp_is_three_he_relu_layers_of_100_and_a_softmax(ch):
    model = ch.mlp((28, 28), 10)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [100, 100, 100, 10]
    assert [d.get_config()["activation"] for d in dense] == ["relu"] * 3 + ["softmax"]
    assert all(d.get_config()["kernel_initializer"]["class_name"] == "HeNormal" for d in dense[:3])
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert model.count_params() == 784 * 100 + 100 + 2 * (100 * 100 + 100) + 100 * 10 + 10


def test_softmax_regression_is_one_dense_layer(ch):
    model = ch.softmax_regression((28, 28), 10)
    assert model.count_params() == 784 * 10 + 10


@pytest.mark.parametrize("builder", ["mlp", "softmax_regression"])
def test_both_models_train_in_lockstep(ch, builder):
    """Nothing in them couples the replicas, so the seeds train as one stacked model."""
    model = getattr(ch, builder)((28, 28), 10)
    assert stackable.problem(model, []) is None
