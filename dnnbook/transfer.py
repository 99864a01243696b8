"""Transfer learning: the task A / task B split of Fashion-MNIST and safe layer reuse.

Task A holds eight classes; task B the two left out (by default T-shirt/top vs Pullover),
with only a few hundred labelled training images. :func:`reuse_layers` builds a new model
from a trained one WITHOUT touching the original (clone, then copy the weights), and
:func:`set_trainable` freezes or unfreezes the reused layers and recompiles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook.data import Splits
from dnnbook.experiments import say
from dnnbook.models import compile_classifier
from dnnbook.runtime import seed_everything

B_CLASSES = (0, 2)  # T-shirt/top, Pullover


@dataclass(frozen=True)
class ABSplit:
    """Task A (all classes but ``b_classes``, relabelled 0..k-1) and task B (``b_classes`` → 0, 1)."""

    a: Splits
    b: Splits
    a_classes: tuple[int, ...]
    b_classes: tuple[int, ...]


def _subset(x: np.ndarray, y: np.ndarray, classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isin(y, classes)
    lookup = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([lookup[int(v)] for v in y[keep]], dtype=np.int64)


def split_ab(splits: Splits, *, b_classes: Sequence[int] = B_CLASSES, n_b_train: int = 200,
             seed: int = 0) -> ABSplit:
    """Split ``splits`` into task A and task B.

    Task A keeps every image of the other classes in each split. Task B keeps the
    ``b_classes`` images of the validation and test splits, but only ``n_b_train`` training
    images, drawn at random with ``seed`` (so each seed sees a different small labelled set).
    Training images come only from the training split, never from the test split.
    """
    b_classes = tuple(int(c) for c in b_classes)
    a_classes = tuple(c for c in range(splits.n_classes) if c not in b_classes)
    parts_a, parts_b = [], []
    for x, y in ((splits.x_train, splits.y_train), (splits.x_valid, splits.y_valid),
                 (splits.x_test, splits.y_test)):
        parts_a += list(_subset(x, y, a_classes))
        parts_b += list(_subset(x, y, b_classes))
    n_avail = len(parts_b[0])
    if n_b_train > n_avail:
        raise ValueError(f"n_b_train={n_b_train} but the training split holds only {n_avail} task-B images")
    pick = np.sort(np.random.default_rng(seed).choice(n_avail, size=n_b_train, replace=False))
    parts_b[0], parts_b[1] = parts_b[0][pick], parts_b[1][pick]
    names = splits.class_names
    return ABSplit(Splits(*parts_a, tuple(names[c] for c in a_classes)),
                   Splits(*parts_b, tuple(names[c] for c in b_classes)), a_classes, b_classes)


def dense_positions(model: keras.Model) -> list[int]:
    """Indices (in ``model.layers``) of the Dense layers, input to output."""
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Dense)]


def reuse_layers(model: keras.Model, n_hidden: int | None = None,
                 new_layers: Sequence[keras.layers.Layer] = (), *,
                 name: str = "reused") -> tuple[keras.Model, list[keras.layers.Layer]]:
    """A new Sequential model made of a COPY of ``model``'s lower layers plus ``new_layers``.

    Keeps every layer of ``model`` (a Sequential) below its ``n_hidden + 1``-th Dense layer
    (``None``: all but the output layer), so a Dense block keeps its activation. The layers
    are cloned and their weights copied, so training the new model never changes ``model``.
    Returns the new (uncompiled) model and the list of reused layers.
    """
    dense = dense_positions(model)
    if n_hidden is None:
        n_hidden = len(dense) - 1
    if not 0 < n_hidden < len(dense):
        raise ValueError(f"n_hidden must lie in 1..{len(dense) - 1}, got {n_hidden}")
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())  # clone_model does not copy weights
    reused = list(clone.layers[:dense[n_hidden]])
    new = keras.Sequential([keras.Input(shape=tuple(model.input_shape[1:])), *reused, *new_layers],
                           name=name)
    return new, reused


def set_trainable(model: keras.Model, layers: Sequence[keras.layers.Layer], trainable: bool,
                  learning_rate: float) -> keras.Model:
    """Freeze (``trainable=False``) or unfreeze ``layers`` and recompile ``model`` with Adam.

    Recompiling is required: a compiled model keeps the trainable set it was compiled with.
    """
    for layer in layers:
        layer.trainable = trainable
    return compile_classifier(model, keras.optimizers.Adam(learning_rate=learning_rate))


@dataclass(frozen=True)
class Schedule:
    """How a model with reused layers is trained: frozen first, then unfrozen with a lower rate."""

    frozen_epochs: int = 5
    tuned_epochs: int = 10
    learning_rate: float = 1e-3
    tune_learning_rate: float = 1e-4
    batch_size: int = 32

    @property
    def epochs(self) -> int:
        return self.frozen_epochs + self.tuned_epochs


# A factory builds a fresh model and returns it with its reused layers ([] = from scratch).
Factory = Callable[[], tuple[keras.Model, list[keras.layers.Layer]]]


def train_schedule(make: Factory, data: Splits, schedule: Schedule, *, seed: int) -> pd.DataFrame:
    """Train one model per :class:`Schedule`; one row with its final train/valid/test metrics.

    A model with reused layers trains ``frozen_epochs`` with them frozen, then
    ``tuned_epochs`` with everything trainable at ``tune_learning_rate``. A model without
    reused layers trains all ``epochs`` at ``learning_rate``. The validation and test sets
    are only evaluated at the end (no choice is made during training).
    """
    seed_everything(seed)
    model, reused = make()
    fit = dict(batch_size=schedule.batch_size, verbose=0)
    if reused:
        set_trainable(model, reused, False, schedule.learning_rate)
        model.fit(data.x_train, data.y_train, epochs=schedule.frozen_epochs, **fit)
        set_trainable(model, reused, True, schedule.tune_learning_rate)
        hist = model.fit(data.x_train, data.y_train, epochs=schedule.tuned_epochs, **fit).history
    else:
        compile_classifier(model, keras.optimizers.Adam(learning_rate=schedule.learning_rate))
        hist = model.fit(data.x_train, data.y_train, epochs=schedule.epochs, **fit).history
    row = {"seed": int(seed), "epoch": schedule.epochs, "loss": hist["loss"][-1],
           "accuracy": hist["accuracy"][-1]}
    for split in ("valid", "test"):
        loss, acc = model.evaluate(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"),
                                   verbose=0, batch_size=512)[:2]
        prefix = "val" if split == "valid" else "test"
        row[f"{prefix}_loss"], row[f"{prefix}_accuracy"] = float(loss), float(acc)
    return pd.DataFrame([row])


def compare_runs(configs: Mapping[str, Callable[[int], Factory]], data_for_seed: Callable[[int], Splits],
                 seeds: Sequence[int], schedule: Schedule) -> pd.DataFrame:
    """Train every config on every seed's data (paired by seed); the tidy frame of all runs.

    ``configs`` maps a name to ``factory_for(seed)``; ``data_for_seed(seed)`` gives the data
    of that seed (e.g. its own small labelled subset), the same for every config.
    """
    frames, total, k = [], len(configs) * len(seeds), 0
    for seed in seeds:
        data = data_for_seed(int(seed))
        for name, factory_for in configs.items():
            k += 1
            frame = train_schedule(factory_for(int(seed)), data, schedule, seed=int(seed))
            frame.insert(0, "config", name)
            frames.append(frame)
            say(f"[{k}/{total}] {name} seed {seed}: val_accuracy {frame['val_accuracy'].iloc[-1]:.4f}")
    df = pd.concat(frames, ignore_index=True)
    df["config"] = pd.Categorical(df["config"], categories=list(configs), ordered=True)
    return df


def weights_equal(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    """True when two weight lists (as from ``get_weights``) are identical."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def upscale_input(model: keras.Model, small_shape: Sequence[int]) -> keras.Model:
    """``model`` behind a resizing front end, so it takes images of ``small_shape`` (h, w).

    The images are resized (bilinear) to the model's own input size, so objects keep the
    scale and position the model learned them at. The model's layers are shared, not copied.
    """
    h, w = (int(s) for s in model.input_shape[1:3])
    return keras.Sequential([keras.Input(shape=tuple(small_shape)),
                             keras.layers.Reshape((*small_shape, 1)),
                             keras.layers.Resizing(h, w, interpolation="bilinear"),
                             keras.layers.Reshape((h, w)), model], name="resized")


def downscale(x: np.ndarray, size: int) -> np.ndarray:
    """Average-pool square images ``(n, s, s)`` to ``(n, size, size)`` (``s`` a multiple of size)."""
    n, s = x.shape[0], x.shape[1]
    if s % size:
        raise ValueError(f"image side {s} is not a multiple of {size}")
    f = s // size
    return x.reshape(n, size, f, size, f).mean(axis=(2, 4)).astype(np.float32)


def pad_to(x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad square images ``(n, s, s)`` to ``(n, size, size)``, centred."""
    s = x.shape[1]
    lo = (size - s) // 2
    out = np.zeros((x.shape[0], size, size), dtype=np.float32)
    out[:, lo:lo + s, lo:lo + s] = x
    return out
