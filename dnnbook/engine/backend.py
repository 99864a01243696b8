"""The only backend-specific code in dnnbook: gradients of a loss w.r.t. a model's weights,
and how many training steps one call runs.

Three implementations (TensorFlow, JAX, PyTorch) of one function, :func:`gradients`, and
:func:`probe_function`, one pass that returns both the gradients and the hidden activations
where the backend allows (TensorFlow, PyTorch), compiled on request (TensorFlow);
:class:`LoopedSteps` makes JAX on a GPU run the ``steps_per_execution`` steps of one call as
one compiled loop; everything else in the book uses ``keras`` and ``keras.ops``.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
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


def sync(model: keras.Model) -> None:
    """Write the training state that JAX keeps outside the variables during ``fit`` back into
    them, so that they can be read or set (a no-op on the other backends)."""
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


# whether LoopedSteps runs a call's steps as one compiled loop: None (auto) on a GPU or TPU, where
# calling the compiled step from Python bounds small models; not on a CPU, where the arithmetic
# does and the loop only adds a compile per fit. $DNNBOOK_LOOP_STEPS=1 or 0 forces it on or off.
_LOOP_CHOICES = {"": None, "1": True, "0": False}
if os.environ.get("DNNBOOK_LOOP_STEPS", "") not in _LOOP_CHOICES:
    raise ValueError(
        f"DNNBOOK_LOOP_STEPS must be 1 (on), 0 (off) or unset (on a GPU only), "
        f"got {os.environ['DNNBOOK_LOOP_STEPS']!r}"
    )
LOOP_STEPS: bool | None = _LOOP_CHOICES[os.environ.get("DNNBOOK_LOOP_STEPS", "")]


def loops_steps() -> bool:
    """Whether :class:`LoopedSteps` models run each call's steps as one compiled loop here
    (JAX only; see :data:`LOOP_STEPS`)."""
    if keras.backend.backend() != "jax":
        return False
    if LOOP_STEPS is not None:
        return LOOP_STEPS
    import jax

    return jax.default_backend() != "cpu"


def default_steps_per_execution() -> int:
    """Training steps per backend call for lockstep fits: 16 where :func:`loops_steps`,
    else 4 (PyTorch runs one anyway)."""
    return 16 if loops_steps() else 4


class LoopedSteps:
    """Mixin for a ``keras.Model`` subclass: where :func:`loops_steps` (JAX on a GPU), the
    ``steps_per_execution`` training steps of one call run as one compiled loop
    (``jax.lax.scan`` over the stacked batches), one dispatch from Python instead of one per
    step. The steps are Keras's own ``train_step``, in the same order on the same batches, so
    the results are a plain fit's (up to how XLA compiles a loop body). A call whose batches
    differ in shape (the short last batch of an epoch) goes to Keras's own train function, one
    compiled step per batch. Under a ``keras.distribution`` the loop's state keeps its layout
    (XLA propagates the inputs' sharding). Elsewhere, and for eager runs, Keras's own train
    function runs."""

    def make_train_function(self, force: bool = False) -> None:
        fresh = force or self.train_function is None
        super().make_train_function(force)  # type: ignore[misc]
        if (
            fresh
            and loops_steps()
            and self.steps_per_execution > 1
            and self.jit_compile
            and not self.run_eagerly
        ):
            self.train_function = _looped_train_function(
                self, self.steps_per_execution, self.train_function
            )


@functools.cache
def _looped_class(cls: type) -> type:
    return type(f"Looped{cls.__name__}", (LoopedSteps, cls), {})


def looped(model: keras.Model, steps: int | None = None) -> keras.Model:
    """Where :func:`loops_steps` (JAX on a GPU), make a compiled plain model (not yet fit) run
    ``steps`` training steps per call (default :func:`default_steps_per_execution`) as one
    compiled loop, as the lockstep models do; elsewhere leave it as it is. Returns the model.
    Per-batch callbacks would then run once per call: use it only for fits without them."""
    if not loops_steps() or isinstance(model, LoopedSteps):
        return model
    model.__class__ = _looped_class(type(model))
    model.steps_per_execution = steps or default_steps_per_execution()
    model.train_function = None
    return model


def _looped_train_function(model: keras.Model, n: int, keras_function: Callable) -> Callable:
    """``keras_function`` (Keras's own, one compiled step per batch) runs the calls whose
    batches differ in shape."""
    import jax
    import jax.numpy as jnp

    step = model.train_step

    def many(state, batches):
        def body(carry, batch):
            logs, carry = step(carry, batch)
            return carry, logs

        state, logs = jax.lax.scan(body, state, batches)
        return jax.tree.map(lambda v: v[-1], logs), state

    many = jax.jit(many, donate_argnums=0)

    def stack(*leaves):
        return (
            np.stack(leaves)
            if all(isinstance(a, np.ndarray) for a in leaves)
            else jnp.stack(leaves)
        )

    def shapes(batch) -> list:
        return [np.shape(a) for a in jax.tree.leaves(batch)]

    def train_function(state, iterator):
        batches = list(itertools.islice(iterator, n))
        if not batches:
            raise StopIteration  # the epoch is over: Keras's loop catches this, as with its own
        if len(batches) == n and all(shapes(b) == shapes(batches[0]) for b in batches[1:]):
            return many(state, jax.tree.map(stack, *batches))
        return keras_function(state, iter(batches))

    return train_function
