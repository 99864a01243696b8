"""Gradients of a loss with respect to a model's weights (one implementation per backend:
TensorFlow, JAX, PyTorch) and a Sequential model's layer-by-layer pass; chapter 1's probes
(:mod:`dnnbook.probes`) use both."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import keras
import numpy as np

LossFn = Callable[[Any, Any], Any]


def _tensorflow(model: keras.Model, x: Any, y: Any, loss_fn: LossFn, training: bool) -> list:
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=training))
    return tape.gradient(loss, model.trainable_variables)


def _jax(model: keras.Model, x: Any, y: Any, loss_fn: LossFn, training: bool) -> list:
    import jax

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]

    def loss_of(tv):
        out, _ = model.stateless_call(tv, frozen, x, training=training)
        return loss_fn(y, out)

    return jax.grad(loss_of)(trainable)


def _torch(model: keras.Model, x: Any, y: Any, loss_fn: LossFn, training: bool) -> list:
    import torch

    params = [v.value for v in model.trainable_variables]
    loss = loss_fn(y, model(x, training=training))
    return list(torch.autograd.grad(loss, params, allow_unused=True))


_IMPLEMENTATIONS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


def gradients(
    model: keras.Model, x: Any, y: Any, loss_fn: LossFn | None = None, *, training: bool = False
) -> dict[str, np.ndarray]:
    """Gradient of ``loss_fn(y, model(x))`` w.r.t. every trainable variable, as NumPy arrays.

    Keys are the variables' paths (``dense_1/kernel``...), in model order. The default loss
    is mean sparse categorical cross-entropy. ``training=True`` runs dropout/BN in training mode.
    """
    backend = keras.backend.backend()
    if backend not in _IMPLEMENTATIONS:
        raise NotImplementedError(
            f"no gradient implementation for backend {backend!r}; "
            f"choose one of: {', '.join(_IMPLEMENTATIONS)}"
        )
    if loss_fn is None:
        cce = keras.losses.SparseCategoricalCrossentropy()
        loss_fn = lambda yt, yp: cce(yt, yp)  # noqa: E731
    x = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    y = keras.ops.convert_to_tensor(np.asarray(y))
    return _as_numpy(model, _IMPLEMENTATIONS[backend](model, x, y, loss_fn, training))


def _as_numpy(model: keras.Model, grads: list) -> dict[str, np.ndarray]:
    out = {}
    for var, g in zip(model.trainable_variables, grads):
        out[var.path] = (
            np.zeros(var.shape, "float32")
            if g is None
            else np.asarray(keras.ops.convert_to_numpy(g))
        )
    return out


@functools.cache
def _takes_training(cls: type) -> bool:
    return "training" in inspect.signature(cls.call).parameters


def _infer(layer: keras.layers.Layer, h: Any) -> Any:
    """``layer(h, training=False)``; for a built layer, its ``call`` alone, without the
    bookkeeping of ``Layer.__call__`` (a third of an eager pass through a deep, narrow MLP)."""
    if not layer.built:
        return layer(h, training=False)
    return layer.call(h, training=False) if _takes_training(type(layer)) else layer.call(h)


def layer_pass(model: keras.Model, x: Any, watch: tuple) -> tuple[Any, list]:
    """Run a Sequential model layer by layer in inference mode; the output and the
    (input, output) of every layer that is an instance of ``watch``."""
    h, seen = x, []
    for layer in model.layers:
        new = _infer(layer, h)
        if isinstance(layer, watch):
            seen.append((h, new))
        h = new
    return h, seen
