"""Seeds in lockstep: K replicas of one configuration trained as one Keras computation.

Each replica is the very model a solo run with its seed would build (initialized after
seeding with that seed); the K replicas sit side by side in one functional model whose loss
is the sum of theirs. Nothing couples them: the gradient of a sum w.r.t. one replica's
weights is that replica's own gradient, and per-variable optimizers (SGD, momentum, Adam...)
keep per-variable state. So, given the same batch order, each replica ends with the weights
a solo ``fit`` gives. What would couple them is refused (see :func:`why_not`). Where the
model allows, :func:`fit` stacks the replicas instead (:mod:`dnnbook.engine.stacked`): the same
training with one batched product per layer instead of K small ones.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook.data import Splits
from dnnbook.engine.backend import LoopedSteps
from dnnbook.engine.callbacks import (
    EpochLogs,
    EpochTimer,
    observers,
    per_batch,
    prepare,
    updates,
)
from dnnbook.engine.stacked import PENALTY, penalty_tracker, track_penalties
from dnnbook.models import fresh_optimizer

SOLO_LOSS = "solo_loss"
FIT_KWARGS = ("validation_batch_size",)  # fit options that mean the same for every replica


class SideBySide(LoopedSteps, keras.Model):
    """The functional model of :func:`combine`. Its ``compute_loss`` also tracks each replica's
    weight penalty (``model.losses``) at the weights the step uses, so that a replica's
    reported loss is its cross-entropy plus its penalty, as a solo run reports it."""

    def __init__(self, *args, replicas: Sequence[keras.Model] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._replicas = list(replicas)
        self._penalized = [i for i, r in enumerate(self._replicas) if r.losses]
        self.penalty_trackers = [penalty_tracker(i) for i in self._penalized]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        if self._penalized:
            track_penalties(self.penalty_trackers, [keras.ops.sum(keras.ops.stack(self._replicas[i].losses))
                                                    for i in self._penalized], x)
        return loss


def _all_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """``layer``'s layers, those of nested models included (depth first)."""
    return [sub for child in getattr(layer, "layers", []) for sub in [child, *_all_layers(child)]]


def why_not(model: keras.Model) -> str | None:
    """Why replicas of this compiled model cannot train in lockstep, or None if they can."""
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return "the model is not compiled"
    if any(getattr(layer, "activity_regularizer", None) for layer in _all_layers(model)):
        return "activity regularizers (their per-replica share of the loss is not reported)"
    if isinstance(opt, keras.optimizers.LossScaleOptimizer):
        return "loss scaling is shared across replicas"
    config = model.get_compile_config() or {}
    if config.get("loss_weights") or config.get("weighted_metrics"):
        return "loss weights or weighted metrics"
    if keras.backend.backend() == "torch" and any(
            hasattr(layer, "seed_generator") for layer in _all_layers(model)):
        return "on PyTorch, random layers (dropout) draw from one shared stream, so masks would differ"
    if not isinstance(config.get("loss"), str):
        return "the loss is not given by name (its per-replica value could not be reported)"
    return None


def fit_kwargs_problem(fit_kwargs: Mapping[str, Any] | None) -> str | None:
    """Why these ``fit`` options rule out lockstep (None if they do not)."""
    other = sorted(set(fit_kwargs or {}) - set(FIT_KWARGS))
    return f"fit options {', '.join(other)} act on the shared training loop" if other else None


def shares_alike(callback: keras.callbacks.Callback) -> bool:
    """Whether ``callback`` acts only on what replicas in lockstep share alike (it says so with a
    true ``lockstep_safe`` attribute: e.g. it sets or reads the optimizer's learning rate)."""
    return bool(getattr(callback, "lockstep_safe", False))


def callbacks_problem(callbacks: Sequence[keras.callbacks.Callback] | None, model: keras.Model) -> str | None:
    """Why these callbacks rule out lockstep for replicas of ``model`` (None if they do not):
    each must act only on what replicas share alike (:func:`shares_alike`) or be a
    ``ReduceLROnPlateau`` that can run per replica (:func:`dnnbook.engine.replica_grads.plateau_problem`)."""
    from dnnbook.engine.replica_grads import plateau_problem

    for c in callbacks or ():
        if isinstance(c, keras.callbacks.ReduceLROnPlateau):
            problem = plateau_problem(model, c)
        else:
            problem = None if shares_alike(c) else f"the {type(c).__name__} callback acts on the shared training loop"
        if problem:
            return problem
    return None


def own_rates(replicas: Sequence[keras.Model]) -> list | None:
    """Each replica's learning rate (a value or a schedule) where they differ, else None.
    Replicas of different rates train together only where :func:`dnnbook.engine.replica_grads.rate_problem`
    allows: their rates then act as factors on their own gradients."""
    from dnnbook.engine import replica_grads

    keys = [replica_grads.rate_key(r.optimizer) for r in replicas]
    if all(key == keys[0] for key in keys):
        return None
    problem = replica_grads.rate_problem(replicas[0].optimizer)
    if problem:
        raise ValueError(f"cannot train replicas of different learning rates in lockstep: {problem}")
    return [replica_grads.own_rate(r.optimizer) for r in replicas]


def layout(model: keras.Model, stacking: bool = True) -> str:
    """How replicas of ``model`` train in lockstep: ``"stacked"`` into K-wide layers where
    :func:`dnnbook.engine.stacked.why_not` allows (and ``stacking``), else ``"side by side"``."""
    from dnnbook.engine import stacked

    return "stacked" if stacking and stacked.why_not(model) is None else "side by side"


def combine(replicas: Sequence[keras.Model], steps_per_execution: int = 1,
            learning_rate: float | None = None) -> keras.Model:
    """One functional model holding ``replicas`` side by side, compiled with a copy of
    the first replica's optimizer (at ``learning_rate``, if given) and one loss per replica.
    ``steps_per_execution`` batches several training steps into one backend call (ignored on
    PyTorch)."""
    inputs = keras.Input(shape=replicas[0].input_shape[1:])
    for k, replica in enumerate(replicas):
        replica.name = f"replica_{k}"
    combined = SideBySide(inputs, [r(inputs) for r in replicas], name="lockstep", replicas=replicas)
    config = replicas[0].get_compile_config()
    opt = replicas[0].optimizer
    k = len(replicas)
    # Keras's per-output loss entries average batches without weighting a short last batch;
    # a Mean metric of the same loss reports what a solo run's ``loss`` reports.
    loss_fn = keras.losses.get(config["loss"])
    metrics = [[keras.metrics.MeanMetricWrapper(loss_fn, name=SOLO_LOSS),
                *list(config.get("metrics") or [])] for _ in range(k)]
    if keras.backend.backend() == "torch":
        steps_per_execution = 1  # the PyTorch trainer runs one step per call
    combined.compile(optimizer=fresh_optimizer(opt, learning_rate), loss=[config["loss"]] * k,
                     metrics=metrics, steps_per_execution=steps_per_execution)
    return combined


def fit(replicas: Sequence[keras.Model], data: Splits, *, epochs: int, batch_size: int,
        order_seed: int, steps_per_execution: int = 1, evaluate_test: bool = False,
        stacking: bool = True, epoch_logs: Mapping[str, Callable[[keras.Model], float]] | None = None,
        fit_kwargs: Mapping[str, Any] | None = None, callbacks: Sequence[keras.callbacks.Callback] = ()
        ) -> list[pd.DataFrame]:
    """Train ``replicas`` together; return one per-epoch history frame per replica.

    The replicas are stacked into K-wide layers where :func:`dnnbook.engine.stacked.why_not` allows
    (and ``stacking``), and put side by side otherwise; either way their trained weights end up
    in ``replicas``. ``epoch_time`` is the lockstep epoch time divided by the number of
    replicas; with ``evaluate_test`` the frames get ``test_loss`` and ``test_accuracy``;
    ``epoch_logs`` (name → function of a model) adds a column measured on each replica at the
    end of every epoch. ``fit_kwargs`` may only hold :data:`FIT_KWARGS`. ``callbacks`` may only
    be ones that act on what all replicas share alike (:func:`shares_alike`: the learning rate
    of the one optimizer) or a ``ReduceLROnPlateau``, which runs once per replica
    (:class:`dnnbook.engine.replica_grads.ReplicaPlateau`); with a callback that may act between any
    two steps, every step is its own execution (see :func:`dnnbook.experiments.per_batch`).
    ``global_clipnorm`` clips each replica's gradients by their own global norm, and replicas
    of different learning rates or schedules (plain SGD only, and only callbacks that observe)
    each train at their own (:func:`own_rates`, :mod:`dnnbook.engine.replica_grads`).
    """
    from dnnbook.engine import replica_grads, stacked
    from dnnbook.runtime import seed_everything

    reason = why_not(replicas[0]) or fit_kwargs_problem(fit_kwargs) or callbacks_problem(callbacks, replicas[0])
    if reason:
        raise ValueError(f"cannot train in lockstep: {reason}")
    k, names = len(replicas), [r.name for r in replicas]
    if any(per_batch(c) for c in callbacks):
        steps_per_execution = 1
    plateau = [isinstance(c, keras.callbacks.ReduceLROnPlateau) for c in callbacks]
    own = own_rates(replicas)
    if own is not None and not observers(callbacks):
        raise ValueError("cannot train replicas of different learning rates in lockstep with callbacks "
                         "that act on the training (only ones that observe it)")
    stack = layout(replicas[0], stacking) == "stacked"
    one = None if own is None else 1.0  # the replicas' own rates go into their gradients' factors
    if stack:
        combined, ys = stacked.stack(replicas, steps_per_execution, one), (lambda y: y)
        specs = stacked.replica_specs(combined)
    else:
        combined, ys = combine(replicas, steps_per_execution, one), (lambda y: [y] * k)
        specs = {id(v): ("whole", i) for i, r in enumerate(replicas) for v in r.trainable_variables}
    factor = replica_grads.install(combined.optimizer, specs, k, rates=any(plateau), schedules=own,
                                   global_clipnorm=replicas[0].optimizer.global_clipnorm)
    timer = EpochTimer()
    hooks: list = [timer]
    if epoch_logs:
        sync = (lambda: stacked.unstack(combined, replicas)) if stack else None
        hooks.append(EpochLogs(epoch_logs, replicas, before=sync))
    if any(plateau):  # the replicas share one rate here (a plateau needs it): the copies start from it
        base_rate = float(keras.ops.convert_to_numpy(replicas[0].optimizer.learning_rate))
        hooks += [replica_grads.ReplicaPlateau(c, factor, base_rate, k, replica_logs) if p else c
                  for c, p in zip(callbacks, plateau)]
    else:
        hooks += list(callbacks)
    prepare(callbacks, combined.optimizer, updates(data, epochs, batch_size))
    seed_everything(order_seed)  # the batch order a solo run with order_seed would see
    hist = combined.fit(data.x_train, ys(data.y_train), validation_data=(data.x_valid, ys(data.y_valid)),
                        epochs=epochs, batch_size=batch_size, verbose=0, callbacks=hooks,
                        **dict(fit_kwargs or {})).history
    test = {}
    if evaluate_test:
        test = combined.evaluate(data.x_test, ys(data.y_test), verbose=0, return_dict=True,
                                 batch_size=max(batch_size, 256))
    if stack:
        stacked.unstack(combined, replicas)
    for replica, name in zip(replicas, names):
        replica.name = name
    frames = []
    for i in range(k):
        frame = pd.DataFrame(_replica_columns(hist, i))
        frame["epoch_time"] = np.asarray(timer.times[:len(frame)]) / k
        if evaluate_test:
            scores = _replica_columns({key: [v] for key, v in test.items()}, i)
            frame["test_loss"], frame["test_accuracy"] = scores["loss"][0], scores["accuracy"][0]
        frames.append(frame)
    return frames


def replica_logs(logs: dict, i: int) -> dict:
    """Replica ``i``'s entries of one epoch's lockstep logs, under the names a solo run logs them."""
    return {key: float(values[0]) for key, values in _replica_columns({key: [v] for key, v in logs.items()}, i).items()}


def _replica_columns(logs: dict, i: int) -> dict:
    """Replica ``i``'s entries of lockstep logs, under the names a solo run logs them."""
    prefix, val_prefix = f"replica_{i}_", f"val_replica_{i}_"
    cols = {}
    for key, values in logs.items():
        if key.startswith(prefix):
            cols[key[len(prefix):]] = values
        elif key.startswith(val_prefix):
            cols["val_" + key[len(val_prefix):]] = values
    cols = {key: np.asarray(values, dtype=float) for key, values in cols.items()}
    for key in ("", "val_"):  # side by side: the solo loss comes from its own metric; + the penalty
        if key + SOLO_LOSS in cols:
            cols[key + "loss"] = cols.pop(key + SOLO_LOSS)
        if key + PENALTY in cols:
            cols[key + "loss"] = cols[key + "loss"] + cols.pop(key + PENALTY)
    return cols
