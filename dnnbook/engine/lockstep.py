"""Seeds in lockstep: the K seeds of one configuration trained as one stacked Keras model.

Why: a small MLP leaves the machine idle between its small steps; K replicas fused into one
model do K times the work per step for little more time (``benchmarks/throughput.py``).

How: :func:`stack` rewrites K replicas of a Sequential MLP, each built after seeding with its
own seed, into one model whose every layer carries all K. A Dense layer becomes a
:class:`StackedDense` with a ``(K, in, out)`` kernel and one batched product; per-feature layers
(activations, BatchNormalization, PReLU) and per-element ones (Dropout) act unchanged on the
K replicas' features laid side by side, ``(batch, K·units)``, so each replica gets its own
batch statistics and its own dropout masks. The loss is the sum of the replicas' losses, so a
replica's weights get that replica's own gradient, and the optimizers allowed here update each
weight on its own. Each replica thus trains as a solo run with its seed would, up to float
rounding (a batched product adds in another order, and deep nets amplify the difference) and
dropout (its masks are other draws): the seeds are independent samples of the configuration.
:mod:`dnnbook.engine.replica_grads` gives each replica its own ``global_clipnorm`` and
``ReduceLROnPlateau``. What cannot be stacked is named by
:func:`dnnbook.engine.stackable.why_not`, and :func:`dnnbook.experiments.run` trains it seed
after seed instead.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
from keras import ops

from dnnbook.data import Splits
from dnnbook.engine import backend, devices, replica_grads
from dnnbook.engine.callbacks import EpochLogs, EpochTimer
from dnnbook.engine.callbacks import fit as fit_run
from dnnbook.engine.stackable import AXIS_CONSTRAINTS, is_activation, problem, settings

PENALTY = "penalty_in_loss"  # each replica's weight penalty, as the stacked model reports it


class StackedDense(keras.layers.Layer):
    """K Dense layers as one: ``(batch, K·in)`` (or, the first, a shared ``(batch, in)``) to
    ``(batch, K·out)`` (or, the last, ``(batch, K, out)``) with one batched product over a
    ``(K, in, out)`` kernel. ``activation`` applies per replica (softmax included). Weight
    penalties are not layer losses: :meth:`penalties` gives each replica's. A kernel
    constraint acts on each replica's slice (its axis moved to the stacked kernel's)."""

    def __init__(
        self, k: int, dense: keras.layers.Dense, shared_input: bool, last: bool, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.k, self.units, self.use_bias = k, dense.units, dense.use_bias
        self.activation = keras.activations.get(dense.get_config()["activation"])
        self.shared_input, self.last = shared_input, last
        self.kernel_penalty, self.bias_penalty = dense.kernel_regularizer, dense.bias_regularizer
        self.kernel_constraint = _on_stacked_kernel(dense.kernel_constraint)
        self.bias_constraint = dense.bias_constraint

    def build(self, input_shape) -> None:
        d_in = input_shape[-1] if self.shared_input else input_shape[-1] // self.k
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.k, d_in, self.units),
            initializer="zeros",
            constraint=self.kernel_constraint,
        )
        self.bias = (
            self.add_weight(
                name="bias",
                shape=(self.k * self.units,),
                initializer="zeros",
                constraint=self.bias_constraint,
            )
            if self.use_bias
            else None
        )

    def call(self, x):
        if self.shared_input:  # one (batch, in) x (in, K·out) product
            kernel = ops.reshape(ops.transpose(self.kernel, (1, 0, 2)), (-1, self.k * self.units))
            y = ops.matmul(x, kernel)
        else:
            y = ops.einsum(
                "bki,kio->bko", ops.reshape(x, (-1, self.k, self.kernel.shape[1])), self.kernel
            )
            y = ops.reshape(y, (-1, self.k * self.units))
        if self.bias is not None:
            y = y + self.bias
        y = self.activation(ops.reshape(y, (-1, self.k, self.units)))
        return y if self.last else ops.reshape(y, (-1, self.k * self.units))

    def penalties(self):
        """Each replica's weight penalty, a ``(K,)`` tensor (0 without penalties)."""
        out = 0.0
        for reg, w in ((self.kernel_penalty, self.kernel), (self.bias_penalty, self.bias)):
            if reg is not None and w is not None:
                w = ops.reshape(w, (self.k, -1))
                cfg = reg.get_config()
                out = (
                    out
                    + cfg.get("l1", 0.0) * ops.sum(ops.abs(w), axis=1)
                    + cfg.get("l2", 0.0) * ops.sum(ops.square(w), axis=1)
                )
        return out


def _on_stacked_kernel(constraint):
    """A Dense kernel constraint rewritten for the ``(K, in, out)`` kernel: its axis moved by one."""
    if not isinstance(constraint, AXIS_CONSTRAINTS):
        return constraint
    cfg = constraint.get_config()
    axis = cfg["axis"]
    cfg["axis"] = [a % 2 + 1 for a in axis] if isinstance(axis, (list, tuple)) else axis % 2 + 1
    return constraint.__class__.from_config(cfg)


class ReplicaMean(keras.metrics.Metric):
    """Per replica, the mean of ``fn(labels, predictions)`` over the examples (a ``(batch,
    K)`` value), or of what :meth:`add` adds; reported as ``replica_{k}_{name}``."""

    def __init__(self, k: int, name: str, fn: Callable | None = None, **kwargs) -> None:
        super().__init__(name=f"replicas_{name}", **kwargs)
        self.k, self.fn, self.short = k, fn, name
        self.total = self.add_variable(shape=(k,), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def add(self, total, count) -> None:
        self.total.assign(self.total + ops.cast(total, "float32"))
        self.count.assign(self.count + ops.cast(count, "float32"))

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        values = self.fn(_labels(y_true, self.k), y_pred)
        self.add(ops.sum(ops.cast(values, "float32"), axis=0), ops.shape(values)[0])

    def result(self) -> dict:
        mean = self.total / ops.maximum(self.count, 1.0)
        return {f"replica_{i}_{self.short}": mean[i] for i in range(self.k)}

    def reset_state(self) -> None:
        self.total.assign(ops.zeros((self.k,)))
        self.count.assign(0.0)


def _labels(y_true, k: int):
    y = ops.reshape(y_true, (-1, 1))
    return ops.broadcast_to(y, (ops.shape(y)[0], k))


def _cross_entropy(y, y_pred):
    return keras.losses.sparse_categorical_crossentropy(y, y_pred)


def _accuracy(y, y_pred):
    return ops.cast(
        ops.equal(ops.cast(y, "int32"), ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32"
    )


class Stacked(backend.LoopedSteps, keras.Model):
    """The model :func:`stack` builds. ``origin`` lists ``(i, layer)``: the stacked layer made
    from the replicas' layer ``i``. Its ``compute_loss`` adds the replicas' weight penalties and
    reports each (``replica_{k}_penalty_in_loss``), so that a replica's loss is its cross-entropy plus
    its penalty, as a solo run reports it."""

    def __init__(
        self, *args, k: int = 1, origin: Sequence[tuple[int, keras.layers.Layer]] = (), **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.origin = list(origin)
        self.penalized = [
            layer
            for _, layer in self.origin
            if isinstance(layer, StackedDense)
            and (layer.kernel_penalty or (layer.bias_penalty and layer.use_bias))
        ]
        self.penalty = ReplicaMean(k, PENALTY) if self.penalized else None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        if not self.penalized:
            return loss
        per_replica = sum(layer.penalties() for layer in self.penalized)
        batch = ops.shape(y)[0]  # weighted by the batch size, as Keras weights a run's loss
        self.penalty.add(per_replica * ops.cast(batch, "float32"), batch)
        return loss + ops.sum(per_replica)


class StackedActivation(keras.layers.Layer):
    """Each replica's own activation layer on ``(batch, K·units)``: ``runs`` lists ``(start,
    stop, layer)``, the weightless activation layer of replicas ``start`` to ``stop - 1``
    (configurations that differ only in their activations train as one model)."""

    def __init__(
        self, k: int, runs: Sequence[tuple[int, int, keras.layers.Layer]], **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.k, self.runs = k, list(runs)

    def call(self, x):
        y = ops.reshape(x, (-1, self.k, x.shape[-1] // self.k))
        y = ops.concatenate([layer(y[:, a:b]) for a, b, layer in self.runs], axis=1)
        return ops.reshape(y, (-1, x.shape[-1]))


def _activations(layers: Sequence[keras.layers.Layer]) -> StackedActivation | None:
    """One stacked layer for the replicas' activation layers at one position, if they differ."""
    runs: list = []
    for j, layer in enumerate(layers):
        if runs and settings(layers[runs[-1][0]]) == settings(layer):
            runs[-1][1] = j + 1
        else:
            runs.append([j, j + 1])
    if len(runs) == 1:
        return None
    return StackedActivation(
        len(layers),
        [(a, b, layers[a].__class__.from_config(layers[a].get_config())) for a, b in runs],
    )


class Tile(keras.layers.Layer):
    """K copies of the input features side by side: ``(batch, in)`` to ``(batch, K·in)``, for
    per-feature layers before the first Dense layer (each replica's own input BN or dropout)."""

    def __init__(self, k: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = k

    def call(self, x):
        return ops.tile(x, (1, self.k))


def stack(replicas: Sequence[keras.Model], rate_factors: bool = False) -> Stacked:
    """One compiled model holding ``replicas`` (see :func:`dnnbook.engine.stackable.why_not`)
    stacked, starting from their weights, each weight holding the K replicas' along its first
    axis, with a fresh copy of their optimizer (:func:`dnnbook.engine.replica_grads.replica_optimizer`: per-replica
    ``global_clipnorm`` and, with ``rate_factors``, per-replica factors on the gradients)."""
    k, layers = len(replicas), replicas[0].layers
    first_dense = next(i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense))
    tiled = not all(isinstance(layer, keras.layers.Flatten) for layer in layers[:first_dense])
    x = inputs = keras.Input(shape=replicas[0].inputs[0].shape[1:])
    origin = []
    for i, layer in enumerate(layers):
        if tiled and i == next(
            j for j, other in enumerate(layers) if not isinstance(other, keras.layers.Flatten)
        ):
            x = Tile(k)(x)
        if isinstance(layer, keras.layers.Dense):
            new = StackedDense(
                k,
                layer,
                shared_input=i == first_dense and not tiled,
                last=i == len(layers) - 1,
                name=f"stacked_{layer.name}",
            )
        elif is_activation(layer) and _activations([r.layers[i] for r in replicas]):
            new = _activations([r.layers[i] for r in replicas])
        else:
            new = layer.__class__.from_config(
                layer.get_config() | {"name": f"stacked_{layer.name}"}
            )
        x = new(x)
        new.trainable = layer.trainable
        origin.append((i, new))
    model = Stacked(inputs, x, name="stacked", k=k, origin=origin)
    for i, new in origin:
        per_replica = zip(*(r.layers[i].get_weights() for r in replicas))
        new.set_weights([np.stack(ws).reshape(v.shape) for ws, v in zip(per_replica, new.weights)])

    def loss(y_true, y_pred):
        return ops.sum(_cross_entropy(_labels(y_true, k), y_pred), axis=-1)

    optimizer = replica_grads.replica_optimizer(replicas[0].optimizer, k, rate_factors=rate_factors)
    spe = (
        1 if keras.backend.backend() == "torch" else backend.default_steps_per_execution()
    )  # torch: 1 per call
    model.compile(
        optimizer=optimizer,
        loss=loss,
        steps_per_execution=spe,
        metrics=[ReplicaMean(k, "loss", _cross_entropy), ReplicaMean(k, "accuracy", _accuracy)],
    )
    return model


def unstack(model: Stacked, replicas: Sequence[keras.Model]) -> None:
    """Copy each replica's part of the stacked weights back into ``replicas``."""
    for i, new in model.origin:
        parts = [np.split(ops.convert_to_numpy(w), len(replicas)) for w in new.weights]
        for j, replica in enumerate(replicas):
            replica.layers[i].set_weights(
                [p[j].reshape(v.shape) for p, v in zip(parts, replica.layers[i].weights)]
            )


def fit(
    replicas: Sequence[keras.Model],
    data: Splits,
    *,
    epochs: int,
    batch_size: int,
    order_seed: int,
    evaluate_test: bool = False,
    epoch_logs: Mapping[str, Callable[[keras.Model], float]] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> list[pd.DataFrame]:
    """Train ``replicas`` stacked; return one per-epoch history frame per replica, with the
    columns a solo run's history has, and leave the trained weights in ``replicas``.

    ``epoch_time`` is the epoch's time divided by K; with ``evaluate_test`` the frames get
    ``test_loss`` and ``test_accuracy``; ``epoch_logs`` (name → function of a model) adds a
    column measured on each replica at the end of every epoch. ``callbacks`` serve all replicas
    at once (:func:`problem` says which may), a ``ReduceLROnPlateau`` once per replica.
    """

    reason = problem(replicas[0], callbacks)
    if reason:
        raise ValueError(f"cannot train in lockstep: {reason}")
    k = len(replicas)
    plateaus = any(isinstance(c, keras.callbacks.ReduceLROnPlateau) for c in callbacks)
    with devices.spread(k):  # the replicas over every device JAX sees
        model = stack(replicas, rate_factors=plateaus)
        timer = EpochTimer()
        hooks: list = [timer]
        if epoch_logs:  # measured on each replica, its weights copied out of the stacked model
            hooks.append(EpochLogs(epoch_logs, replicas, before=lambda: unstack(model, replicas)))
        for c in callbacks:  # a ReduceLROnPlateau runs once per replica, the others once
            plateau = isinstance(c, keras.callbacks.ReduceLROnPlateau)
            hooks.append(replica_grads.ReplicaPlateau(c, k, replica_logs) if plateau else c)
        hist = fit_run(
            model,
            data,
            epochs=epochs,
            batch_size=batch_size,
            order_seed=order_seed,
            callbacks=callbacks,
            hooks=hooks,
        )
        test = (
            model.evaluate(
                data.x_test,
                data.y_test,
                verbose=0,
                return_dict=True,
                batch_size=max(batch_size, 256),
            )
            if evaluate_test
            else {}
        )
        unstack(model, replicas)
    frames = []
    for i in range(k):
        frame = pd.DataFrame(replica_logs(hist, i))
        frame["epoch_time"] = np.asarray(timer.times[: len(frame)]) / k
        if evaluate_test:
            scores = replica_logs(test, i)
            frame["test_loss"], frame["test_accuracy"] = scores["loss"], scores["accuracy"]
        frames.append(frame)
    return frames


def replica_logs(logs: Mapping[str, Any], i: int) -> dict:
    """Replica ``i``'s entries of stacked logs (values or lists of them), under the names a
    solo run logs them: its penalty is added to its loss."""
    cols = {}
    for key, value in logs.items():
        for prefix, to in ((f"replica_{i}_", ""), (f"val_replica_{i}_", "val_")):
            if key.startswith(prefix):
                cols[to + key[len(prefix) :]] = np.asarray(value, dtype=float)
    for to in ("", "val_"):
        if to + PENALTY in cols:
            cols[to + "loss"] = cols[to + "loss"] + cols.pop(to + PENALTY)
    return cols
