"""Model builders: the book's MLP with every knob the chapters turn."""

from __future__ import annotations

from typing import Any, Sequence

import keras

BN_PLACEMENTS = ("none", "before", "after")
# the layers that are a hidden activation (after its Dense layer, or after BN)
ACTIVATION_LAYERS = (
    keras.layers.Activation,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.ReLU,
)
# activations added as their own layer after the Dense layer (as the article shows for LeakyReLU)
LAYER_ACTIVATIONS = {
    "leaky_relu": lambda: keras.layers.LeakyReLU(negative_slope=0.2),
    "prelu": lambda: keras.layers.PReLU(),
}


def _activation_layer(activation: str) -> keras.layers.Layer:
    if activation in LAYER_ACTIVATIONS:
        return LAYER_ACTIVATIONS[activation]()
    return keras.layers.Activation(activation)


def build_mlp(
    input_shape: Sequence[int],
    n_classes: int,
    *,
    depth: int = 3,
    width: int = 100,
    activation: str = "relu",
    initializer: Any = "he_normal",
    batch_norm: str = "none",
    dropout: float = 0.0,
    kernel_regularizer: Any = None,
    kernel_constraint: Any = None,
    input_batch_norm: bool = False,
    name: str = "mlp",
) -> keras.Model:
    """A Sequential MLP: Flatten, ``depth`` × Dense(``width``) blocks, softmax output.

    ``batch_norm`` is ``"none"``, ``"before"`` (Dense without bias → BN → activation) or
    ``"after"`` (Dense → activation → BN). ``activation`` is any Keras activation name or
    ``leaky_relu``/``prelu`` (added as a separate layer after Dense). ``dropout`` follows
    each hidden block; ``kernel_regularizer``/``kernel_constraint`` apply to every Dense
    layer; ``input_batch_norm`` puts BN first instead of standardizing the inputs.
    """
    if batch_norm not in BN_PLACEMENTS:
        raise ValueError(
            f"unknown batch_norm {batch_norm!r}; choose one of: {', '.join(BN_PLACEMENTS)}"
        )
    if depth < 0 or width < 1:
        raise ValueError(f"depth must be >= 0 and width >= 1, got depth={depth}, width={width}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    layers: list[keras.layers.Layer] = [
        keras.Input(shape=tuple(input_shape)),
        keras.layers.Flatten(),
    ]
    if input_batch_norm:
        layers.append(keras.layers.BatchNormalization())
    dense_kw = dict(
        kernel_initializer=initializer,
        kernel_regularizer=kernel_regularizer,
        kernel_constraint=kernel_constraint,
    )
    for _ in range(depth):
        if batch_norm == "before":
            layers += [
                keras.layers.Dense(width, use_bias=False, **dense_kw),
                keras.layers.BatchNormalization(),
                _activation_layer(activation),
            ]
        else:
            layers += [keras.layers.Dense(width, **dense_kw), _activation_layer(activation)]
            if batch_norm == "after":
                layers.append(keras.layers.BatchNormalization())
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", **dense_kw))
    return keras.Sequential(layers, name=name)


def compile_classifier(model: keras.Model, optimizer: Any = "sgd", **kwargs: Any) -> keras.Model:
    """Compile for integer labels: sparse cross-entropy loss and accuracy. Returns the model."""
    model.compile(
        optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"], **kwargs
    )
    return model


def baseline(
    input_shape: Sequence[int], n_classes: int, learning_rate: float = 0.01, **compile_kwargs: Any
) -> keras.Model:
    """The book's reference model, compiled: 3 × Dense(100, ReLU, He) + softmax, plain SGD
    (``compile_kwargs`` go to ``compile``, e.g. ``steps_per_execution``)."""
    model = build_mlp(
        input_shape,
        n_classes,
        depth=3,
        width=100,
        activation="relu",
        initializer="he_normal",
        name="baseline",
    )
    return compile_classifier(
        model, keras.optimizers.SGD(learning_rate=learning_rate), **compile_kwargs
    )
