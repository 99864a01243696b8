"""Keras callbacks and helpers that every training loop of dnnbook shares, solo or in lockstep.

A callback may say how it may be served: ``per_batch = False`` (it acts only at epoch ends or
inside the compiled step), ``observer = True`` (it only reads the training state), a
``prepare(optimizer, updates)`` method (it hooks the optimizer before ``fit``).
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping

import keras

from dnnbook.data import Splits


def per_batch(callback: keras.callbacks.Callback) -> bool:
    """Whether ``callback`` may act between any two training steps (so that each step must be its
    own backend call): all callbacks but ``ReduceLROnPlateau`` and those with a false
    ``per_batch`` attribute (epoch-level ones, or ones that act inside the compiled step)."""
    if isinstance(callback, keras.callbacks.ReduceLROnPlateau):
        return False
    return bool(getattr(callback, "per_batch", True))


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch in ``self.times`` (seconds)."""

    per_batch = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.times: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter() - self._start)


class EpochLogs(keras.callbacks.Callback):
    """Adds ``name: fn(model)`` to the logs at the end of every epoch, measured on the model being
    fit or, given ``replicas``, on each replica as ``replica_{i}_{name}`` (after ``before()``)."""

    per_batch = False

    def __init__(self, fns: Mapping[str, Callable[[keras.Model], float]],
                 replicas: list[keras.Model] | None = None, before: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.fns, self.replicas, self.before = dict(fns), replicas, before

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()  # JAX keeps the weights outside the variables during fit
        if self.before:
            self.before()
        if self.replicas is None:
            logs.update({name: float(fn(self.model)) for name, fn in self.fns.items()})
            return
        for i, replica in enumerate(self.replicas):
            logs.update({f"replica_{i}_{name}": float(fn(replica)) for name, fn in self.fns.items()})


def updates(data: Splits, epochs: int, batch_size: int) -> int:
    """How many updates ``epochs`` epochs over ``data``'s training set take."""
    return epochs * -(-len(data.x_train) // batch_size)


def prepare(callbacks: Iterable[keras.callbacks.Callback], optimizer: keras.optimizers.Optimizer,
            updates: int) -> None:
    """Let the callbacks that hook the optimizer before ``fit`` (a ``prepare(optimizer, updates)``
    method, e.g. :class:`dnnbook.optimizers.RateRecorder`) do so, for ``updates`` updates."""
    for c in callbacks:
        if hasattr(c, "prepare"):
            c.prepare(optimizer, updates)


def observers(callbacks: Iterable[keras.callbacks.Callback] | None) -> bool:
    """Whether every one of ``callbacks`` only reads the training state (a true ``observer``
    attribute), so that one set may serve several configurations trained together."""
    return all(getattr(c, "observer", False) for c in callbacks or ())
