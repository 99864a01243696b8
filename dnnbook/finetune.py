"""Paired runs of models that reuse layers, trained in phases (e.g. frozen, then unfrozen),
each seed on its own data. A config is ``(make, phases)``: ``make()`` returns a fresh model and
the layers it reuses; ``phases(model, reused)`` returns ``[(compiled model, epochs), ...]``, run
in turn. Phases are compiled once per config; each seed copies its fresh weights in and restarts
the optimizers (what a freshly built model would train, without tracing one per seed).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import keras
import pandas as pd

from dnnbook.data import Splits
from dnnbook.engine import backend
from dnnbook.experiments import say
from dnnbook.runtime import seed_everything

Reused = list[keras.layers.Layer]
Make = Callable[[], tuple[keras.Model, Reused]]
Phases = Callable[[keras.Model, Reused], list[tuple[keras.Model, int]]]


def _restart(model: keras.Model, source: keras.Model) -> None:
    """Give a compiled ``model`` the weights of ``source`` (layer by layer, the same
    architecture) and a fresh optimizer state."""
    for layer, other in zip(model.layers, source.layers):
        layer.set_weights(other.get_weights())
    for var in model.optimizer.variables:
        if "learning_rate" not in var.path:
            var.assign(keras.ops.zeros(var.shape, var.dtype))


def _compile(make: Make, phases: Phases, data: Splits, batch_size: int) -> list:
    """The config's compiled phases, each warmed up on a full and a short batch so that what
    a first ``fit`` does once (tracing, and the random draws it makes) happens before any run
    is seeded."""
    compiled = phases(*make())
    n = min(len(data.x_train), batch_size + len(data.x_train) % batch_size)
    for model, _ in compiled:
        backend.looped(model)  # several steps per call as one compiled loop, with JAX on a GPU
        model.fit(data.x_train[:n], data.y_train[:n], epochs=1, batch_size=batch_size, verbose=0)
    return compiled


def train(
    make: Make,
    phases: Phases,
    data: Splits,
    *,
    seed: int,
    batch_size: int = 32,
    compiled: dict | None = None,
) -> pd.DataFrame:
    """Train one run (weights from ``seed``); one row of its final train, validation and test
    metrics. The validation and test sets are evaluated at the end only. Pass the same dict as
    ``compiled`` for every seed of one config to compile its phases once."""
    compiled = {} if compiled is None else compiled
    if "phases" not in compiled:  # before seeding: the run's draws are untouched
        compiled["phases"] = _compile(make, phases, data, batch_size)
    seed_everything(seed)
    fresh, _ = make()
    runs = compiled["phases"]
    if [tuple(w.shape) for w in fresh.weights] != [tuple(w.shape) for w in runs[0][0].weights]:
        raise ValueError(
            f"the compiled phases were built for another architecture than {fresh.name!r}: "
            "give each config its own entry in `compiled`"
        )
    source, hist = fresh, {}
    for model, epochs in runs:
        _restart(model, source)  # each phase starts where the last one ended
        hist = model.fit(
            data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, verbose=0
        ).history
        source = model
    row = {"seed": int(seed), "epoch": sum(e for _, e in runs)}
    row |= {"loss": hist["loss"][-1], "accuracy": hist["accuracy"][-1]}
    for prefix, x, y in (("val", data.x_valid, data.y_valid), ("test", data.x_test, data.y_test)):
        loss, acc = source.evaluate(x, y, verbose=0, batch_size=512)[:2]
        row[f"{prefix}_loss"], row[f"{prefix}_accuracy"] = float(loss), float(acc)
    return pd.DataFrame([row])


def compare(
    configs: Mapping[str, tuple[Make, Phases]],
    data_for_seed: Callable[[int], Splits],
    seeds: Sequence[int],
    *,
    batch_size: int = 32,
    compiled: dict | None = None,
) -> pd.DataFrame:
    """Train every config on every seed's data (``data_for_seed(seed)``, the same for every
    config: paired by seed); the tidy frame of all runs, one row per (config, seed). Pass one
    dict as ``compiled`` to several calls to compile a config (by name) once for all."""
    cache = {} if compiled is None else compiled
    frames, total = [], len(configs) * len(seeds)
    for i, seed in enumerate(int(s) for s in seeds):
        data = data_for_seed(seed)
        for j, (name, (make, phases)) in enumerate(configs.items()):
            frame = train(
                make,
                phases,
                data,
                seed=seed,
                batch_size=batch_size,
                compiled=cache.setdefault(name, {}),
            )
            frames.append(frame.assign(config=name))
            done = i * len(configs) + j + 1
            say(f"[{done}/{total}] {name} seed {seed}: val_accuracy {frame.val_accuracy[0]:.4f}")
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "config", pd.Categorical(df.pop("config"), categories=list(configs), ordered=True))
    return df
