"""What the training engine does differently per backend: the training state JAX keeps
outside the variables (:func:`sync`), and the steps of one call run as one compiled loop
(:class:`LoopedSteps`, JAX on a GPU). Gradients and layer passes per backend are in
:mod:`dnnbook.autodiff`.
"""

from __future__ import annotations

import functools
import itertools
import os
from typing import Callable

import keras
import numpy as np


def sync(model: keras.Model) -> None:
    """Write the training state that JAX keeps outside the variables during ``fit`` back into
    them, so that they can be read or set (a no-op on the other backends)."""
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


# whether LoopedSteps runs a call's steps as one compiled loop: None (auto) on a GPU or TPU, where
# calling the compiled step from Python bounds small models; not on a CPU, where the arithmetic
# does and the loop only adds a compile per fit. $DNNBOOK_LOOP_STEPS=1 or 0 forces it on or off.
_LOOP_CHOICES = {"": None, "1": True, "0": False}


def loop_steps_setting(value: str) -> bool | None:
    """``$DNNBOOK_LOOP_STEPS`` read: True (``1``), False (``0``) or None (unset: a GPU only)."""
    if value not in _LOOP_CHOICES:
        raise ValueError(
            f"DNNBOOK_LOOP_STEPS must be 1 (on), 0 (off) or unset (on a GPU only), got {value!r}"
        )
    return _LOOP_CHOICES[value]


LOOP_STEPS: bool | None = loop_steps_setting(os.environ.get("DNNBOOK_LOOP_STEPS", ""))


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
