"""Seeds in lockstep: K replicas of one configuration trained as one Keras computation.

Each replica is the very model a solo run with its seed would build (initialized after
seeding with that seed); the K replicas sit side by side in one functional model whose loss
is the sum of theirs. Nothing couples them: the gradient of a sum w.r.t. one replica's
weights is that replica's own gradient, and per-variable optimizers (SGD, momentum, Adam...)
keep per-variable state. So, given the same batch order, each replica ends with the weights
a solo ``fit`` gives. What would couple them is refused (see :func:`why_not`).
"""
from __future__ import annotations

import time
from typing import Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook.data import Splits
from dnnbook.experiments import EpochTimer


SOLO_LOSS = "solo_loss"


def why_not(model: keras.Model) -> str | None:
    """Why replicas of this compiled model cannot train in lockstep, or None if they can."""
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return "the model is not compiled"
    if getattr(opt, "global_clipnorm", None):
        return "global_clipnorm clips all replicas' gradients together"
    if model.losses:
        return "regularization losses would enter the shared loss without per-replica reporting"
    if isinstance(opt, keras.optimizers.LossScaleOptimizer):
        return "loss scaling is shared across replicas"
    config = model.get_compile_config() or {}
    if config.get("loss_weights") or config.get("weighted_metrics"):
        return "loss weights or weighted metrics"
    if keras.backend.backend() == "torch" and any(
            hasattr(layer, "seed_generator") for layer in model._flatten_layers()):
        return "on PyTorch, random layers (dropout) draw from one shared stream, so masks would differ"
    if not isinstance(config.get("loss"), str):
        return "the loss is not given by name (its per-replica value could not be reported)"
    return None


def combine(replicas: Sequence[keras.Model], steps_per_execution: int = 1) -> keras.Model:
    """One functional model holding ``replicas`` side by side, compiled with a copy of
    the first replica's optimizer and one loss per replica. ``steps_per_execution`` batches
    several training steps into one backend call (ignored on PyTorch)."""
    inputs = keras.Input(shape=replicas[0].input_shape[1:])
    for k, replica in enumerate(replicas):
        replica.name = f"replica_{k}"
    combined = keras.Model(inputs, [r(inputs) for r in replicas], name="lockstep")
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
    combined.compile(optimizer=opt.__class__.from_config(opt.get_config()), loss=[config["loss"]] * k,
                     metrics=metrics, steps_per_execution=steps_per_execution)
    return combined


def fit(replicas: Sequence[keras.Model], data: Splits, *, epochs: int, batch_size: int,
        order_seed: int, steps_per_execution: int = 1) -> list[pd.DataFrame]:
    """Train ``replicas`` together; return one per-epoch history frame per replica.

    ``epoch_time`` is the lockstep epoch time divided by the number of replicas.
    """
    from dnnbook.runtime import seed_everything

    reason = why_not(replicas[0])
    if reason:
        raise ValueError(f"cannot train in lockstep: {reason}")
    k = len(replicas)
    names = [r.name for r in replicas]
    combined = combine(replicas, steps_per_execution)
    timer = EpochTimer()
    seed_everything(order_seed)  # the batch order a solo run with order_seed would see
    hist = combined.fit(data.x_train, [data.y_train] * k,
                        validation_data=(data.x_valid, [data.y_valid] * k),
                        epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer]).history
    for replica, name in zip(replicas, names):
        replica.name = name
    frames = []
    for i in range(k):
        prefix, val_prefix = f"replica_{i}_", f"val_replica_{i}_"
        cols = {}
        for key, values in hist.items():
            if key.startswith(prefix):
                cols[key[len(prefix):]] = values
            elif key.startswith(val_prefix):
                cols["val_" + key[len(val_prefix):]] = values
        cols["loss"], cols["val_loss"] = cols.pop(SOLO_LOSS), cols.pop("val_" + SOLO_LOSS)
        frame = pd.DataFrame(cols)
        frame["epoch_time"] = np.asarray(timer.times[:len(frame)]) / k
        frames.append(frame)
    return frames
