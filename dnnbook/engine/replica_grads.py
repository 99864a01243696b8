"""Per-replica gradient treatment for seeds in lockstep: global-norm clipping and plateau rates.

Two things a solo run does to its gradients would couple the replicas of a lockstep model if
they acted on the combined model: ``global_clipnorm`` (one norm over all the weights it
updates) and a learning rate that a callback lowers when the run's own validation loss stalls
(``keras.callbacks.ReduceLROnPlateau``). Here both act per replica. :func:`install` hooks the
combined model's optimizer so that, before every update, each replica's gradients are clipped
by the global norm of that replica's gradients alone (Keras's formula) and multiplied by that
replica's rate factor, an optimizer variable (so it is part of the training state on every
backend). :class:`ReplicaPlateau` runs one copy of a ``ReduceLROnPlateau`` per replica on the
replica's own logs and sets its factor. A factor times the gradient is a factor times the rate
only where the update is linear in ``rate × gradient``: plain SGD, with or without (Nesterov)
momentum; :func:`plateau_problem` refuses the rest. The same holds for replicas that each have
their own learning rate or schedule (configurations that differ only in the rate, trained as one
model): :func:`install` with ``schedules`` sets the combined optimizer's rate to 1 and makes each
replica's factor its own rate at the update's iteration (:func:`rate_problem` says where not).

Where a replica's weights sit in a combined variable is its *spec*: ``("axis", a)`` (the
replica index is axis ``a``: a stacked kernel), ``("flat",)`` (K equal blocks one after the
other: a stacked bias, BN or PReLU weight) or ``("whole", i)`` (the variable is replica
``i``'s: side by side).
"""
from __future__ import annotations

import copy
import functools
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
from keras import ops

Spec = tuple
FACTOR = "replica_rate_factor"


def _squared_norms(g, spec: Spec, k: int):
    """Each replica's sum of squares of ``g``: a ``(K,)`` tensor."""
    if spec[0] == "axis":
        return ops.sum(ops.square(g), axis=tuple(a for a in range(len(g.shape)) if a != spec[1]))
    if spec[0] == "flat":
        return ops.sum(ops.square(ops.reshape(g, (k, -1))), axis=1)
    return ops.one_hot(spec[1], k, dtype=g.dtype) * ops.sum(ops.square(g))


def _scaled(g, spec: Spec, scale, k: int):
    """``g`` with each replica's part multiplied by its entry of ``scale`` (a ``(K,)`` tensor)."""
    if spec[0] == "axis":
        shape = [1] * len(g.shape)
        shape[spec[1]] = k
        return g * ops.reshape(scale, shape)
    if spec[0] == "flat":
        return ops.reshape(ops.reshape(g, (k, -1)) * ops.expand_dims(scale, 1), g.shape)
    return g * scale[spec[1]]


def clip_scales(grads: Sequence, specs: Sequence[Spec], k: int, clip_norm: float):
    """Per replica, the factor that brings its gradients' global norm down to ``clip_norm``
    (1 where it is below; NaN where the norm is not finite, as Keras's ``clip_by_global_norm``)."""
    norm = ops.sqrt(sum((_squared_norms(g, s, k) for g, s in zip(grads, specs)), ops.zeros((k,))))
    return clip_norm * ops.minimum(1.0 / norm, 1.0 / clip_norm) + (norm - norm)


class UpdateHooks:
    """Mixin for a Keras optimizer class: before every update, :meth:`apply` (Keras's public
    update method: ``apply_gradients`` calls it on every backend, ``stateless_apply`` under JAX)
    passes the gradients through the instance's ``transforms``, each a function
    ``transform(grads, ids, learning_rate)`` (``ids``: the ``id`` of each gradient's variable)
    returning the gradients to apply."""

    transforms: tuple = ()
    replica_factor = None  # (K, factor): see :func:`current_factor`

    def build(self, variables) -> None:
        super().build(variables)  # type: ignore[misc]
        self.variable_ids = [id(v) for v in variables]  # the order of ``stateless_apply``'s gradients

    def apply(self, grads, trainable_variables=None):
        ids = self.variable_ids if trainable_variables is None else [id(v) for v in trainable_variables]
        grads = list(grads)
        for transform in self.transforms:
            grads = transform(grads, ids, self.learning_rate)
        return super().apply(grads, trainable_variables)  # type: ignore[misc]


@functools.cache
def _hooked_class(cls: type) -> type:
    return type(cls.__name__, (UpdateHooks, cls), {})


def wrap_update(optimizer: keras.optimizers.Optimizer, transform: Callable) -> None:
    """Run ``transform(grads, ids, learning_rate)`` (it returns the gradients to apply)
    before every update of ``optimizer`` (not yet built), inside the compiled step on every
    backend: the optimizer becomes an instance of its class with :class:`UpdateHooks` mixed in."""
    if optimizer.built:
        raise ValueError("hook the optimizer's update before it is built (before fit)")
    if not isinstance(optimizer, UpdateHooks):
        optimizer.__class__ = _hooked_class(type(optimizer))
    optimizer.transforms = (*optimizer.transforms, transform)


def rate_problem(optimizer: keras.optimizers.Optimizer) -> str | None:
    """Why replicas trained by ``optimizer`` cannot each have their own rate through a factor on
    their gradients (None if they can: plain SGD, with or without (Nesterov) momentum)."""
    if not isinstance(optimizer, keras.optimizers.SGD):
        return f"per-replica rates need an update linear in the rate (plain SGD), not {type(optimizer).__name__}"
    if optimizer.weight_decay or optimizer.use_ema or optimizer.gradient_accumulation_steps or optimizer.loss_scale_factor:
        return "weight decay, EMA, gradient accumulation or loss scaling act beside the rate"
    return None


def rate_key(optimizer: keras.optimizers.Optimizer):
    """What tells ``optimizer``'s learning rate apart: its value, or its schedule's kind and settings."""
    lr = own_rate(optimizer)
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        return type(lr).__name__, repr(sorted(lr.get_config().items()))
    return ("callable", id(lr)) if callable(lr) else lr


def own_rate(optimizer: keras.optimizers.Optimizer):
    """``optimizer``'s learning rate as :func:`install` takes it: its schedule (or callable), or its value."""
    lr = optimizer.get_config()["learning_rate"]  # a schedule comes serialized
    return lr if isinstance(lr, float) else keras.optimizers.schedules.deserialize(lr)


def _rate_at(rate, step):
    """A learning rate (a float, a schedule or a callable) at ``step``, as a float32 scalar
    tensor, as Keras's optimizer reads its own."""
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return ops.cast(rate(step), "float32")
    return ops.cast(rate(), "float32") if callable(rate) else ops.convert_to_tensor(np.float32(rate))


def install(optimizer: keras.optimizers.Optimizer, specs: Mapping[int, Spec], k: int, *,
            global_clipnorm: float | None = None, rates: bool = False,
            schedules: Sequence | None = None):
    """Make ``optimizer`` (not yet built) clip each replica's gradients by their own global norm
    and, with ``rates``, scale them by a per-replica factor. With ``schedules`` (one learning
    rate or schedule per replica), the factor also holds each replica's own rate at the update's
    iteration, and ``optimizer``'s rate must be 1 (see :func:`rate_problem`). ``specs`` maps
    ``id(variable)`` to the variable's spec. Returns the factor variable (``(K,)``, ones) or None
    without ``rates``; :func:`current_factor` gives the whole factor of an update."""
    if not global_clipnorm and not rates and schedules is None:
        return None
    if optimizer.built:
        raise ValueError("install per-replica gradients before the optimizer is built")
    if schedules is not None:
        if len(schedules) != k:
            raise ValueError(f"need one learning rate per replica: {k} replicas, {len(schedules)} rates")
        problem = rate_problem(optimizer)
        if problem or rate_key(optimizer) != 1.0:
            raise ValueError(f"cannot give replicas their own rates: {problem or 'the optimizer rate must be 1'}")
    optimizer.global_clipnorm = None  # clipped below, per replica, instead
    factor = optimizer.add_variable((k,), initializer="ones", dtype="float32", name=FACTOR) if rates else None

    def whole_factor():
        f = None if factor is None else ops.convert_to_tensor(factor)
        if schedules is not None:
            own = ops.stack([_rate_at(r, optimizer.iterations) for r in schedules])
            f = own if f is None else own * f
        return f

    def per_replica(grads, ids, learning_rate):
        per = [specs[i] for i in ids]
        scale = clip_scales(grads, per, k, global_clipnorm) if global_clipnorm else None
        f = whole_factor()
        if f is not None:
            scale = f if scale is None else scale * f
        return [_scaled(g, s, scale, k) for g, s in zip(grads, per)]

    wrap_update(optimizer, per_replica)
    if factor is not None or schedules is not None:
        optimizer.replica_factor = (k, whole_factor)
    return factor


def current_factor(optimizer: keras.optimizers.Optimizer) -> tuple[int, Callable] | None:
    """``(K, factor)`` where :func:`install` gave ``optimizer`` a per-replica rate factor:
    ``factor()`` is the ``(K,)`` tensor it applies to the update now running (rate factors
    times the replicas' own rates); None where it gave none."""
    return getattr(optimizer, "replica_factor", None)


def plateau_problem(model: keras.Model, callback: keras.callbacks.Callback) -> str | None:
    """Why ``callback`` (a ``ReduceLROnPlateau``) cannot run per replica on ``model``'s replicas."""
    opt = model.optimizer
    problem = rate_problem(opt)
    if problem:
        return problem
    if not isinstance(opt.get_config()["learning_rate"], float):
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
    the rate factor (:func:`install`) becomes ``rate / base_rate``. Each replica's rate of the
    epoch goes into the logs as ``replica_{i}_learning_rate``, as a solo run logs ``learning_rate``."""

    def __init__(self, template: keras.callbacks.ReduceLROnPlateau, factor, base_rate: float, k: int,
                 logs_of: Callable[[dict, int], dict]) -> None:
        super().__init__()
        self.copies = [copy.deepcopy(template) for _ in range(k)]
        self.factor, self.base, self.logs_of = factor, np.float32(base_rate), logs_of
        self.rates = [self.base] * k
        for i, c in enumerate(self.copies):
            c.set_model(_ReplicaView(self, i))

    def on_train_begin(self, logs: dict | None = None) -> None:
        for c in self.copies:
            c.on_train_begin(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        before = list(self.rates)
        for i, c in enumerate(self.copies):
            own = self.logs_of(logs, i)
            c.on_epoch_end(epoch, own)
            logs[f"replica_{i}_learning_rate"] = own["learning_rate"]
        if self.rates != before:
            sync = getattr(self.model, "jax_state_sync", None)
            if sync is not None:
                sync()
            self.factor.assign(np.asarray(self.rates, "float32") / self.base)
