"""Gradients of a loss with respect to a model's weights, and a model's layer-by-layer pass:
the code of dnnbook that has one implementation per backend.

:func:`gradients` has three implementations (TensorFlow, JAX, PyTorch) of one function;
:func:`probe_function` returns both the gradients and the hidden activations from one pass
where the backend allows (TensorFlow, PyTorch), compiled on request (TensorFlow). Chapter 1's
probes (:mod:`dnnbook.gradients`) use them. The other branches on the backend are few and
named where they are: the training state JAX keeps outside the variables
(:func:`dnnbook.engine.backend.sync`), JAX's compiled loop of steps
(:class:`dnnbook.engine.backend.LoopedSteps`), JAX's device mesh
(:mod:`dnnbook.engine.devices`) and the seeding and determinism switches
(:mod:`dnnbook.runtime`).
"""

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


ProbeFn = Callable[[Any, Any], tuple[dict[str, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]]


def probe_function(model: keras.Model, watch: tuple, compiled: bool = True) -> ProbeFn:
    """A function of ``(x, y)`` returning the gradients of the mean cross-entropy (as
    :func:`gradients`, inference mode) and the (input, output) of every layer of a type in
    ``watch``, at the model's current weights, from one pass where the backend allows
    (TensorFlow, PyTorch; JAX makes two). With ``compiled`` the TensorFlow pass is traced once
    and reused: the trace costs several eager passes, so it pays off only when the same model is
    probed many times."""
    name = keras.backend.backend()

    def numpy_pairs(seen: list) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)) for a, b in seen]

    if name == "tensorflow":
        import tensorflow as tf

        onehot = keras.losses.CategoricalCrossentropy()

        def both(x, y):  # one-hot labels: the gradient of a gather costs more than the whole loss
            with tf.GradientTape() as tape:
                out, seen = layer_pass(model, x, watch)
                loss = onehot(tf.one_hot(y, out.shape[-1]), out)
            return tape.gradient(loss, model.trainable_variables), seen

        if compiled:  # plain Python loops: nothing for autograph to convert
            both = tf.function(both, reduce_retracing=True, autograph=False)

        def run(x: Any, y: Any):
            grads, seen = both(
                tf.convert_to_tensor(np.asarray(x, "float32")), tf.convert_to_tensor(np.asarray(y))
            )
            return _as_numpy(model, grads), numpy_pairs(seen)

        return run

    if name == "torch":
        import torch

        cce = keras.losses.SparseCategoricalCrossentropy()

        def one_pass(x: Any, y: Any):
            params = [v.value for v in model.trainable_variables]
            out, seen = layer_pass(
                model, keras.ops.convert_to_tensor(np.asarray(x, "float32")), watch
            )
            loss = cce(keras.ops.convert_to_tensor(np.asarray(y)), out)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            return _as_numpy(model, grads), numpy_pairs(seen)

        return one_pass

    def eager(x: Any, y: Any):
        x = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
        return gradients(model, x, y), numpy_pairs(layer_pass(model, x, watch)[1])

    return eager
