"""Keras callbacks and helpers that every training loop of dnnbook shares, solo or in lockstep.

A callback may say how it may be served by two duck-typed members: a true ``lockstep_safe``
attribute (one instance may serve all the seeds of a lockstep fit: it acts only on what they
share, such as the optimizer, and never between two steps) and a ``prepare(optimizer,
updates)`` method (it hooks the optimizer before ``fit``, e.g. the rate recorder of the
engine tests, ``tests/rate_recorder.py``).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping, Sequence

import keras

from dnnbook.data import Splits
from dnnbook.engine.backend import sync
from dnnbook.runtime import seed_everything


def lockstep_safe(callback: keras.callbacks.Callback) -> bool:
    """Whether one ``callback`` may serve all the seeds of a lockstep fit (see above)."""
    return bool(getattr(callback, "lockstep_safe", False))


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch in ``self.times`` (seconds)."""

    lockstep_safe = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.times: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter() - self._start)


class EpochLogs(keras.callbacks.Callback):
    """Adds ``name: fn(model)`` to the logs at the end of every epoch, measured on the model being
    fit or, given ``replicas``, on each replica as ``replica_{i}_{name}`` (after ``before()``)."""

    lockstep_safe = True

    def __init__(
        self,
        fns: Mapping[str, Callable[[keras.Model], float]],
        replicas: list[keras.Model] | None = None,
        before: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.fns, self.replicas, self.before = dict(fns), replicas, before

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        sync(self.model)
        if self.before:
            self.before()
        for i, model in enumerate(self.replicas or [self.model]):
            prefix = "" if self.replicas is None else f"replica_{i}_"
            logs.update({prefix + name: float(fn(model)) for name, fn in self.fns.items()})


def updates(data: Splits, epochs: int, batch_size: int) -> int:
    """How many updates ``epochs`` epochs over ``data``'s training set take."""
    return epochs * -(-len(data.x_train) // batch_size)


def prepare(
    callbacks: Iterable[keras.callbacks.Callback],
    optimizer: keras.optimizers.Optimizer,
    updates: int,
) -> None:
    """Let the callbacks that hook the optimizer before ``fit`` (a ``prepare(optimizer, updates)``
    method) do so, for ``updates`` updates."""
    for c in callbacks:
        if hasattr(c, "prepare"):
            c.prepare(optimizer, updates)


# examples per validation batch (inference gives the same predictions at any batch size, and
# few large batches take less time than many small ones)
VALIDATION_BATCH = 1000


def fit(
    model: keras.Model,
    data: Splits,
    *,
    epochs: int,
    batch_size: int,
    order_seed: int,
    callbacks: Sequence[keras.callbacks.Callback],
    hooks: Sequence[keras.callbacks.Callback],
) -> dict:
    """The one ``fit`` of every run, solo or in lockstep: let ``callbacks`` hook the optimizer
    (:func:`prepare`), draw the batch order from ``order_seed``, fit on ``data``'s training set
    with its validation set, calling ``hooks``; return the history dict."""
    prepare(callbacks, model.optimizer, updates(data, epochs, batch_size))
    seed_everything(order_seed)  # the batch order a solo run with order_seed would see
    return model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_valid, data.y_valid),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=list(hooks),
        validation_batch_size=max(batch_size, VALIDATION_BATCH),
    ).history
