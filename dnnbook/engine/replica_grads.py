"""Per-replica gradient treatments for seeds in lockstep: global-norm clipping and plateau rates.

Two things a solo run does to its gradients would couple the replicas of a stacked model if
they acted on the whole of it: ``global_clipnorm`` (one norm over all the weights it updates)
and a learning rate that ``keras.callbacks.ReduceLROnPlateau`` lowers when the run's own
validation loss stalls. Here both act per replica, in the optimizer's public update method:
:func:`replica_optimizer` copies the replicas' optimizer into a subclass of its class
(:class:`ReplicaUpdates`) whose ``apply`` (``apply_gradients`` calls it on every backend,
``stateless_apply`` under JAX) clips each replica's gradients by their own global norm
(Keras's formula) and multiplies them by that replica's rate factor, an optimizer variable (so
it is training state on every backend). :class:`ReplicaPlateau` runs one copy of a
``ReduceLROnPlateau`` per replica, on the replica's own logs, and sets its factor. A factor on
the gradient is a factor on the rate only where the update is linear in ``rate × gradient``:
plain SGD, with or without (Nesterov) momentum; :func:`plateau_problem` refuses the rest.
In a stacked model every variable holds the K replicas' parts along its first axis.
"""

from __future__ import annotations

import copy
import functools
from typing import Callable

import keras
import numpy as np
from keras import ops

from dnnbook.engine.backend import sync


class ReplicaUpdates:
    """Mixin for a Keras optimizer class: ``apply`` first runs ``hooks`` (each ``hook(self)``,
    e.g. a recorder of the rate), then treats each replica's gradients on its own: clips them
    by ``clipnorm_per_replica`` and scales them by ``factor`` (a ``(K,)`` variable, or None)."""

    replicas = 1
    clipnorm_per_replica: float | None = None
    factor = None
    hooks: tuple = ()

    def applied_rates(self):
        """The ``(K,)`` rates the update now running applies: the rate times the factors."""
        rate = ops.cast(self.learning_rate, "float32")
        return rate * (
            ops.ones((self.replicas,))
            if self.factor is None
            else ops.convert_to_tensor(self.factor)
        )

    def apply(self, grads, trainable_variables=None):
        for hook in self.hooks:
            hook(self)
        k, scale = self.replicas, None
        if self.clipnorm_per_replica:
            norm = ops.sqrt(
                sum(ops.sum(ops.square(ops.reshape(g, (k, -1))), axis=1) for g in grads)
            )
            # 1 below the bound; NaN where the norm is not finite, as Keras's clip_by_global_norm
            scale = self.clipnorm_per_replica * ops.minimum(
                1.0 / norm, 1.0 / self.clipnorm_per_replica
            ) + (norm - norm)
        if self.factor is not None:
            scale = self.factor if scale is None else scale * self.factor
        if scale is not None:
            grads = [
                ops.reshape(ops.reshape(g, (k, -1)) * ops.expand_dims(scale, 1), g.shape)
                for g in grads
            ]
        return super().apply(grads, trainable_variables)  # type: ignore[misc]


@functools.cache
def _subclass(cls: type) -> type:
    return type(cls.__name__, (ReplicaUpdates, cls), {})


def with_hooks(optimizer: keras.optimizers.Optimizer) -> ReplicaUpdates:
    """``optimizer`` (not yet built), now an instance of its class with :class:`ReplicaUpdates`
    mixed in (one replica, no treatment), so that hooks can be added to its updates."""
    if optimizer.built:
        raise ValueError("hook the optimizer's updates before it is built (before fit)")
    if not isinstance(optimizer, ReplicaUpdates):
        optimizer.__class__ = _subclass(type(optimizer))
    return optimizer


def replica_optimizer(
    optimizer: keras.optimizers.Optimizer, k: int, rate_factors: bool = False
) -> ReplicaUpdates:
    """A fresh copy of ``optimizer`` (from its config) for K stacked replicas: its
    ``global_clipnorm`` clips each replica by its own norm and, with ``rate_factors``, each
    replica's gradients are scaled by its entry of ``factor`` (ones to start with)."""
    config = optimizer.get_config()
    clipnorm = config.pop("global_clipnorm", None)
    new = _subclass(type(optimizer)).from_config(config)
    new.replicas, new.clipnorm_per_replica = k, clipnorm
    if rate_factors:
        new.factor = new.add_variable(
            (k,), initializer="ones", dtype="float32", name="replica_rate_factor"
        )
    return new


def plateau_problem(
    optimizer: keras.optimizers.Optimizer, callback: keras.callbacks.ReduceLROnPlateau
) -> str | None:
    """Why ``callback`` cannot run once per replica of a model trained by ``optimizer`` (None if it can)."""
    if not isinstance(optimizer, keras.optimizers.SGD):
        return f"per-replica rates need an update linear in the rate (plain SGD), not {type(optimizer).__name__}"
    if (
        optimizer.weight_decay
        or optimizer.use_ema
        or optimizer.gradient_accumulation_steps
        or optimizer.loss_scale_factor
    ):
        return "weight decay, EMA, gradient accumulation or loss scaling act beside the rate"
    if not isinstance(
        optimizer.get_config()["learning_rate"], float
    ):  # a schedule comes serialized
        return "ReduceLROnPlateau cannot lower a learning-rate schedule"
    if callback.mode == "auto" and callback.monitor.removeprefix("val_") != "loss":
        return f"ReduceLROnPlateau on {callback.monitor!r} needs an explicit mode in lockstep"
    return None


class _ReplicaView:
    """What one copy of the callback sees as its model: ``optimizer.learning_rate`` is the
    rate of replica ``i`` (reading it, and setting it, as a solo run's optimizer would)."""

    def __init__(self, owner: "ReplicaPlateau", i: int) -> None:
        self._owner, self._i = owner, i

    @property
    def optimizer(self) -> "_ReplicaView":
        return self

    @property
    def learning_rate(self) -> np.float32:
        return self._owner.rates[self._i]

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._owner.rates[self._i] = np.float32(value)


class ReplicaPlateau(keras.callbacks.Callback):
    """One copy of ``template`` (a ``ReduceLROnPlateau``) per replica, each fed its replica's
    logs (``logs_of(logs, i)``, under the names a solo run logs) and setting its replica's rate:
    the optimizer's rate factor becomes ``rate / initial rate``. Each replica's rate of the epoch
    goes into the logs as ``replica_{i}_learning_rate``, as a solo run logs ``learning_rate``."""

    def __init__(
        self,
        template: keras.callbacks.ReduceLROnPlateau,
        k: int,
        logs_of: Callable[[dict, int], dict],
    ) -> None:
        super().__init__()
        self.copies = [copy.deepcopy(template) for _ in range(k)]
        self.logs_of = logs_of
        for i, c in enumerate(self.copies):
            c.set_model(_ReplicaView(self, i))

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.base = np.float32(ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rates = [self.base] * len(self.copies)
        for c in self.copies:
            c.on_train_begin(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        before = list(self.rates)
        for i, c in enumerate(self.copies):
            own = {key: float(v) for key, v in self.logs_of(logs, i).items()}
            c.on_epoch_end(epoch, own)
            logs[f"replica_{i}_learning_rate"] = own["learning_rate"]
        if self.rates != before:
            sync(self.model)
            self.model.optimizer.factor.assign(np.asarray(self.rates, "float32") / self.base)
