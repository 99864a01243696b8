"""Chapter 2, reusing pretrained layers: transfer learning and pretraining without labels.

Task A holds eight Fashion-MNIST classes; task B the two left out (by default T-shirt/top vs
Pullover), with only a few hundred labelled training images. :func:`reuse_layers` builds a new
model from a trained one WITHOUT touching the original (clone, then copy the weights), and
:func:`set_trainable` freezes or unfreezes the reused layers and recompiles.

Pretraining without labels: an autoencoder, a small GAN and a rotation task. Each builder
returns a model whose lower layers are the same *body* (Flatten and two Dense ReLU layers) as
the few-label classifier, so :func:`reuse_layers` can move them under a new softmax output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook.claims import Check
from dnnbook.data import Splits
from dnnbook.engine import backend
from dnnbook.experiments import compare, concat, per_seed, say, summarize
from dnnbook.models import build_mlp, compile_classifier
from dnnbook.runtime import seed_everything
from dnnbook.stats import equivalent

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


def split_ab(
    splits: Splits, *, b_classes: Sequence[int] = B_CLASSES, n_b_train: int = 200, seed: int = 0
) -> ABSplit:
    """Split ``splits`` into task A and task B.

    Task A keeps every image of the other classes in each split. Task B keeps the
    ``b_classes`` images of the validation and test splits, but only ``n_b_train`` training
    images, drawn at random with ``seed`` (so each seed sees a different small labelled set).
    Training images come only from the training split, never from the test split.
    """
    b_classes = tuple(int(c) for c in b_classes)
    a_classes = tuple(c for c in range(splits.n_classes) if c not in b_classes)
    parts_a, parts_b = [], []
    for x, y in (
        (splits.x_train, splits.y_train),
        (splits.x_valid, splits.y_valid),
        (splits.x_test, splits.y_test),
    ):
        parts_a += list(_subset(x, y, a_classes))
        parts_b += list(_subset(x, y, b_classes))
    n_avail = len(parts_b[0])
    if n_b_train > n_avail:
        raise ValueError(
            f"n_b_train={n_b_train} but the training split holds only {n_avail} task-B images"
        )
    pick = np.sort(np.random.default_rng(seed).choice(n_avail, size=n_b_train, replace=False))
    parts_b[0], parts_b[1] = parts_b[0][pick], parts_b[1][pick]
    names = splits.class_names
    return ABSplit(
        Splits(*parts_a, tuple(names[c] for c in a_classes)),
        Splits(*parts_b, tuple(names[c] for c in b_classes)),
        a_classes,
        b_classes,
    )


def dense_positions(model: keras.Model) -> list[int]:
    """Indices (in ``model.layers``) of the Dense layers, input to output."""
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Dense)]


def reuse_layers(
    model: keras.Model,
    n_hidden: int | None = None,
    new_layers: Sequence[keras.layers.Layer] = (),
    *,
    name: str = "reused",
) -> tuple[keras.Model, list[keras.layers.Layer]]:
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
    reused = list(clone.layers[: dense[n_hidden]])
    new = keras.Sequential(
        [keras.Input(shape=tuple(model.input_shape[1:])), *reused, *new_layers], name=name
    )
    return new, reused


def set_trainable(
    model: keras.Model, layers: Sequence[keras.layers.Layer], trainable: bool, learning_rate: float
) -> keras.Model:
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


def _phases(
    model: keras.Model, reused: list[keras.layers.Layer], schedule: Schedule, data: Splits
) -> list[tuple[keras.Model, int]]:
    """Compile ``model`` (and a clone for the second phase) for ``schedule``: a list of
    (compiled model, epochs), one per phase. Each is warmed up on a full and a short batch of
    the training set's shapes, so that what a first ``fit`` does once (tracing, and the random
    draws some backends make while tracing) is done before any run is seeded."""
    if reused and schedule.frozen_epochs > 0:
        tuned = keras.models.clone_model(model)
        set_trainable(model, reused, False, schedule.learning_rate)
        compile_classifier(tuned, keras.optimizers.Adam(learning_rate=schedule.tune_learning_rate))
        phases = [(model, schedule.frozen_epochs), (tuned, schedule.tuned_epochs)]
    else:
        compile_classifier(model, keras.optimizers.Adam(learning_rate=schedule.learning_rate))
        phases = [(model, schedule.epochs)]
    n = min(len(data.x_train), schedule.batch_size + len(data.x_train) % schedule.batch_size)
    for phase, _ in phases:
        backend.looped(phase)  # several steps per call as one compiled loop, with JAX on a GPU
        phase.fit(
            data.x_train[:n], data.y_train[:n], epochs=1, batch_size=schedule.batch_size, verbose=0
        )
    return phases


def _restart(model: keras.Model, weights: list[list[np.ndarray]]) -> None:
    """Give a compiled model new weights (layer by layer) and a fresh optimizer state."""
    for layer, w in zip(model.layers, weights):
        layer.set_weights(w)
    for var in model.optimizer.variables:
        if "learning_rate" not in var.path:
            var.assign(keras.ops.zeros(var.shape, var.dtype))


def train_schedule(
    make: Factory, data: Splits, schedule: Schedule, *, seed: int, compiled: dict | None = None
) -> pd.DataFrame:
    """Train one model per :class:`Schedule`; one row with its final train/valid/test metrics.

    A model with reused layers trains ``frozen_epochs`` with them frozen, then
    ``tuned_epochs`` with everything trainable at ``tune_learning_rate`` (a fresh Adam, as a
    recompile gives). A model without reused layers, or a schedule with ``frozen_epochs=0``,
    trains all ``epochs`` at ``learning_rate`` (then the reused weights are only the starting
    point). The validation and test sets are only evaluated at the end (no choice is made
    during training). The run trains compiled copies of the model it builds (one per phase);
    pass the same dict as ``compiled`` for every seed of one config to compile (and trace) them
    once: later seeds copy their fresh weights in and restart the optimizers, which trains
    exactly what fresh models would.
    """
    compiled = {} if compiled is None else compiled
    if "phases" not in compiled:
        compiled["phases"] = _phases(
            *make(), schedule, data
        )  # before seeding: the run's draws are untouched
    seed_everything(seed)
    fresh, _ = make()
    phases = compiled["phases"]
    if [tuple(w.shape) for w in fresh.weights] != [tuple(w.shape) for w in phases[0][0].weights]:
        raise ValueError(
            f"the compiled models passed in were built for another architecture than "
            f"{fresh.name!r}: give each config its own entry in `compiled`"
        )
    _restart(phases[0][0], [layer.get_weights() for layer in fresh.layers])
    fit = dict(batch_size=schedule.batch_size, verbose=0)
    for i, (phase, epochs) in enumerate(phases):
        if i:  # the next phase starts from where the last one ended
            _restart(phase, [layer.get_weights() for layer in phases[i - 1][0].layers])
        hist = phase.fit(data.x_train, data.y_train, epochs=epochs, **fit).history
    model = phases[-1][0]
    row = {
        "seed": int(seed),
        "epoch": schedule.epochs,
        "loss": hist["loss"][-1],
        "accuracy": hist["accuracy"][-1],
    }
    for split in ("valid", "test"):
        loss, acc = model.evaluate(
            getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), verbose=0, batch_size=512
        )[:2]
        prefix = "val" if split == "valid" else "test"
        row[f"{prefix}_loss"], row[f"{prefix}_accuracy"] = float(loss), float(acc)
    return pd.DataFrame([row])


def compare_runs(
    configs: Mapping[str, Callable[[int], Factory]],
    data_for_seed: Callable[[int], Splits],
    seeds: Sequence[int],
    schedule: Schedule,
    *,
    compiled: dict | None = None,
) -> pd.DataFrame:
    """Train every config on every seed's data (paired by seed); the tidy frame of all runs.

    ``configs`` maps a name to ``factory_for(seed)``; ``data_for_seed(seed)`` gives the data
    of that seed (e.g. its own small labelled subset), the same for every config. Each config
    is compiled once and reused across seeds (see :func:`train_schedule`); pass the same dict
    as ``compiled`` to several calls to reuse it across them too (by config name and schedule:
    give configs that build different models different names).
    """
    frames, total, k = [], len(configs) * len(seeds), 0
    cache = {} if compiled is None else compiled
    compiled = {name: cache.setdefault((name, schedule), {}) for name in configs}
    for seed in seeds:
        data = data_for_seed(int(seed))
        for name, factory_for in configs.items():
            k += 1
            frame = train_schedule(
                factory_for(int(seed)), data, schedule, seed=int(seed), compiled=compiled[name]
            )
            frame.insert(0, "config", name)
            frames.append(frame)
            say(
                f"[{k}/{total}] {name} seed {seed}: val_accuracy {frame['val_accuracy'].iloc[-1]:.4f}"
            )
    df = pd.concat(frames, ignore_index=True)
    df["config"] = pd.Categorical(df["config"], categories=list(configs), ordered=True)
    return df


def weights_equal(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    """True when two weight lists (as from ``get_weights``) are identical."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def changed_weights(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> int:
    """How many numbers differ between two weight lists of the same shapes (0: identical)."""
    if [np.shape(x) for x in a] != [np.shape(y) for y in b]:
        raise ValueError("the weight lists differ in their shapes")
    return int(sum(np.sum(np.asarray(x) != np.asarray(y)) for x, y in zip(a, b)))


def upscale_input(model: keras.Model, small_shape: Sequence[int]) -> keras.Model:
    """``model`` behind a resizing front end, so it takes images of ``small_shape`` (h, w).

    The images are resized (bilinear) to the model's own input size, so objects keep the
    scale and position the model learned them at. The model's layers are shared, not copied.
    """
    h, w = (int(s) for s in model.input_shape[1:3])
    return keras.Sequential(
        [
            keras.Input(shape=tuple(small_shape)),
            keras.layers.Reshape((*small_shape, 1)),
            keras.layers.Resizing(h, w, interpolation="bilinear"),
            keras.layers.Reshape((h, w)),
            model,
        ],
        name="resized",
    )


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
    out[:, lo : lo + s, lo : lo + s] = x
    return out


def train_model_a(ab: ABSplit, *, epochs: int, seed: int, batch_size: int = 32) -> keras.Model:
    """Model A: the book's MLP (3 × Dense(100, ReLU)) trained with Adam on task A."""
    seed_everything(seed)
    model = build_mlp(ab.a.input_shape, ab.a.n_classes, depth=3, width=100, name="model_a")
    compile_classifier(model, keras.optimizers.Adam(learning_rate=1e-3))
    model.fit(ab.a.x_train, ab.a.y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def _hidden() -> keras.layers.Layer:
    return keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal")


def reuse_upper(
    model: keras.Model,
    new_lower: Sequence[keras.layers.Layer],
    new_layers: Sequence[keras.layers.Layer] = (),
    *,
    name: str = "upper",
) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """A new model: ``new_lower`` layers, then a COPY of ``model``'s hidden layers above its
    first one, then ``new_layers``; the first hidden layer of ``model`` is dropped.

    This is the opposite of :func:`reuse_layers` (keep the upper hidden layers, replace the
    lower one). Returns the new (uncompiled) model and the list of reused layers.
    """
    dense = dense_positions(model)
    if len(dense) < 3:
        raise ValueError("reuse_upper needs a model with at least two hidden Dense layers")
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())  # clone_model does not copy weights
    reused = list(clone.layers[dense[1] : dense[-1]])
    new = keras.Sequential(
        [
            keras.Input(shape=tuple(model.input_shape[1:])),
            keras.layers.Flatten(),
            *new_lower,
            *reused,
            *new_layers,
        ],
        name=name,
    )
    return new, reused


def b_configs(model_a: keras.Model, n_classes: int = 2) -> dict[str, Callable[[int], Factory]]:
    """Task-B models, all with A's architecture (3 hidden layers of 100, a new output): from
    scratch; on a copy of A's lower 1, 2 or all 3 hidden layers (new layers above); and on A's
    upper 2 hidden layers above a new first layer."""

    def out() -> keras.layers.Layer:
        return keras.layers.Dense(n_classes, activation="softmax")

    shape = tuple(model_a.input_shape[1:])

    def scratch() -> tuple[keras.Model, list]:
        return build_mlp(shape, n_classes, depth=3, width=100), []

    def lower(n: int) -> Factory:
        return lambda: reuse_layers(model_a, n, [*(_hidden() for _ in range(3 - n)), out()])

    def upper() -> tuple[keras.Model, list]:
        return reuse_upper(model_a, [_hidden()], [out()])

    factories = {
        "B from scratch": scratch,
        "B on A (lower 1)": lower(1),
        "B on A (lower 2)": lower(2),
        "B on A (all 3)": lower(3),
        "B on A (upper 2)": upper,
    }
    return {name: (lambda s, f=f: f) for name, f in factories.items()}


UNFROZEN = "B on A (all 3), unfrozen"


def transfer_runs(
    model_a: keras.Model,
    data_for_seed: Callable[[int], Splits],
    seeds: Sequence[int],
    schedule: Schedule,
) -> pd.DataFrame:
    """Every :func:`b_configs` model trained per ``schedule`` (reused layers frozen first, then
    unfrozen at the lower rate), plus :data:`UNFROZEN`: A's three hidden layers fine-tuned
    with everything trainable from the first epoch, at ``schedule.learning_rate`` for as many
    epochs. Paired by seed; one tidy frame."""
    configs = b_configs(model_a)
    at_once = Schedule(
        frozen_epochs=0,
        tuned_epochs=schedule.epochs,
        learning_rate=schedule.learning_rate,
        batch_size=schedule.batch_size,
    )
    frames = [
        compare_runs(configs, data_for_seed, seeds, schedule),
        compare_runs({UNFROZEN: configs["B on A (all 3)"]}, data_for_seed, seeds, at_once),
    ]
    return concat(frames, [*configs, UNFROZEN])


def error_cut(
    df: pd.DataFrame, reference: str, factor: float = 4.0, metric: str = "test_accuracy"
) -> float:
    """The accuracy gain over ``reference`` that would cut its mean error by ``factor``:
    ``(1 - 1/factor) × (1 - mean accuracy)``, a size of effect tied to the run itself."""
    mean = float(summarize(df, metric).loc[reference, "mean"])
    return (1.0 - 1.0 / factor) * (1.0 - mean)


def equivalent_to(
    df: pd.DataFrame,
    configs: Sequence[str],
    reference: str,
    margin: float,
    metric: str = "test_accuracy",
) -> Check:
    """Paired equivalence (TOST, 90% CI inside ``±margin``) of every config against
    ``reference`` on ``metric``; the margin of the check is the smallest slack, in points."""
    table = per_seed(df, metric)
    tests = {
        c: equivalent(table[c].to_numpy(), table[reference].to_numpy(), margin) for c in configs
    }
    evidence = "; ".join(
        f"{c} {t.diff.mean * 100:+.2f} [{t.diff.low * 100:+.2f}, {t.diff.high * 100:+.2f}]"
        for c, t in tests.items()
    )
    return Check(
        all(t.holds for t in tests.values()),
        f"{evidence} (90% CIs, points, n={len(table)}; margin ±{margin * 100:.2f})",
        min(t.slack for t in tests.values()) * 100,
    )


def label_gain(
    frames: Mapping[int, pd.DataFrame],
    config: str,
    few: int,
    more: int,
    metric: str = "test_accuracy",
) -> float:
    """Mean paired gain of ``config`` trained on ``more`` labels over ``few`` labels, on the
    seeds both runs share (``frames`` maps a label count to its run)."""
    a, b = (per_seed(frames[n], metric)[config] for n in (more, few))
    shared = a.index.intersection(b.index)
    return float((a[shared] - b[shared]).mean())


def gains_above(
    df: pd.DataFrame,
    configs: Sequence[str],
    reference: str,
    floor: float,
    metric: str = "test_accuracy",
) -> Check:
    """One-sided test that no config loses ``-floor`` or more against ``reference``: the lower
    end of each paired gain's one-sided 95% CI (the 90% two-sided one) lies above ``floor``.
    The margin is the smallest distance above it, in points."""
    gains = {c: compare(df, c, reference, metric, level=0.90) for c in configs}
    evidence = "; ".join(
        f"{c} {g.mean * 100:+.1f} (lower {g.low * 100:+.1f})" for c, g in gains.items()
    )
    return Check(
        all(g.low > floor for g in gains.values()),
        f"{evidence} against {floor * 100:+.1f} points",
        min(g.low - floor for g in gains.values()) * 100,
    )


def gain_table(
    df: pd.DataFrame, reference: str, metric: str = "test_accuracy", digits: int = 4
) -> pd.DataFrame:
    """Per config: ``metric`` mean ± std, and its paired gain over ``reference`` with 95% CI."""
    summary = summarize(df, metric)
    fmt = f"{{:.{digits}f}}"
    rows = []
    for name, s in summary.iterrows():
        row = {
            "config": name,
            f"{metric} (mean ± std)": f"{fmt.format(s['mean'])} ± {fmt.format(s['std'])}",
        }
        if name == reference:
            row["gain (mean)"], row["gain 95% CI"] = "—", "—"
        else:
            d = compare(df, str(name), reference, metric)
            row["gain (mean)"] = f"{d.mean:+.{digits}f}"
            row["gain 95% CI"] = f"[{d.low:+.{digits}f}, {d.high:+.{digits}f}]"
        row["seeds"] = int(s["n"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("config")


def paired_plot(
    df: pd.DataFrame, reference: str, metric: str = "test_accuracy", *, title: str | None = None
):
    """Left: ``metric`` per seed and config, seeds joined by lines. Right: each config's
    per-seed gain over ``reference`` with its mean and 95% CI. Returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, label, style

    style()
    table = per_seed(df, metric)
    names = [str(c) for c in table.columns]
    others = [n for n in names if n != reference]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(9.0, 3.6), gridspec_kw={"width_ratios": [1.3, 1]}
    )
    for _, row in table.iterrows():
        left.plot(range(len(names)), row.to_numpy(), color="grey", alpha=0.4, lw=0.8)
    for i, n in enumerate(names):
        left.plot(np.full(len(table), i), table[n], "o", ms=4)
    left.set_xticks(range(len(names)), names, rotation=15, ha="right")
    left.set_ylabel(f"{label(metric)} (one dot per seed)")
    for i, n in enumerate(others):
        diffs = (table[n] - table[reference]).to_numpy() * 100
        d = compare(df, n, reference, metric)
        right.plot(np.full(len(diffs), i), diffs, "o", ms=4, alpha=0.6, color=f"C{names.index(n)}")
        right.errorbar(
            i + 0.2,
            d.mean * 100,
            yerr=[[max(d.mean - d.low, 0) * 100], [max(d.high - d.mean, 0) * 100]],
            fmt="s",
            color="black",
            capsize=4,
            label="mean and 95% CI" if i == 0 else None,
        )
    right.axhline(0, color="grey", ls="--", lw=1)
    right.set_xticks(range(len(others)), others, rotation=15, ha="right")
    right.set_xlim(-0.5, len(others) - 0.3)
    right.set_ylabel(f"gain over {reference} (points)")
    right.legend(loc="best")
    return finish(fig, title)


def gain_curve(
    frames: Mapping[int, pd.DataFrame],
    config: str,
    reference: str,
    metric: str = "test_accuracy",
    *,
    title: str | None = None,
):
    """Gain of ``config`` over ``reference`` (mean and 95% CI, points) against the number of
    labels; ``frames`` maps a label count to the comparison run with it. Returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, style

    style()
    ns = sorted(frames)
    ds = [compare(frames[n], config, reference, metric) for n in ns]
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    ax.errorbar(
        ns,
        [d.mean * 100 for d in ds],
        yerr=np.array([[d.mean - d.low for d in ds], [d.high - d.mean for d in ds]]) * 100,
        fmt="o-",
        capsize=4,
        label=f"{config} − {reference}, mean and 95% CI",
    )
    ax.axhline(0, color="grey", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("labelled training images (log scale)")
    ax.set_ylabel("test-accuracy gain (points)")
    ax.legend(loc="best")
    return finish(fig, title, ax)


def input_shape_accuracies(
    model: keras.Model, x: np.ndarray, y: np.ndarray, size: int
) -> dict[str, float]:
    """Accuracy of ``model`` on ``x`` as it is, and on ``x`` shrunk to ``size`` × ``size`` and
    then brought back to the model's shape by resizing or by zero-padding."""
    small = downscale(x, size)
    resized = upscale_input(model, (size, size))
    resized.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def ev(m: keras.Model, images: np.ndarray) -> float:
        return float(m.evaluate(images, y, verbose=0, batch_size=512)[1])

    side = x.shape[1]
    return {
        f"{side} × {side} original": ev(model, x),
        f"{size} × {size} resized to {side} × {side}": ev(resized, small),
        f"{size} × {size} zero-padded to {side} × {side}": ev(model, pad_to(small, side)),
    }


def refuses(model: keras.Model, x: np.ndarray) -> str | None:
    """The exception type name if ``model`` refuses inputs like ``x``, else None.

    Tried on a throwaway clone: on JAX a failed call can leave the model's variables unusable.
    """
    probe = keras.models.clone_model(model)
    try:
        probe.predict(x, verbose=0)
    except Exception as exc:  # the exception type differs between backends
        return type(exc).__name__
    return None


def body_layers(widths: Sequence[int] = (256, 128)) -> list[keras.layers.Layer]:
    """Flatten and one Dense(ReLU, He) layer per width: the body every model here shares."""
    return [keras.layers.Flatten()] + [
        keras.layers.Dense(w, activation="relu", kernel_initializer="he_normal") for w in widths
    ]


def classifier(
    input_shape: Sequence[int], n_classes: int, widths: Sequence[int] = (256, 128)
) -> keras.Model:
    """The few-label classifier from scratch: the body and a softmax output (uncompiled)."""
    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            *body_layers(widths),
            keras.layers.Dense(n_classes, activation="softmax"),
        ],
        name="classifier",
    )


def autoencoder(input_shape: Sequence[int], widths: Sequence[int] = (256, 128)) -> keras.Model:
    """An MLP autoencoder: the body as encoder, its mirror as decoder, sigmoid pixels out.

    The encoder's last layer is the body's last Dense layer; the model is compiled with
    Adam and binary cross-entropy per pixel.
    """
    n_pixels = int(np.prod(input_shape))
    decoder = [
        keras.layers.Dense(w, activation="relu", kernel_initializer="he_normal")
        for w in list(widths)[-2::-1]
    ]
    model = keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            *body_layers(widths),
            *decoder,
            keras.layers.Dense(n_pixels, activation="sigmoid"),
            keras.layers.Reshape(tuple(input_shape)),
        ],
        name="autoencoder",
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def rotate(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image rotated by a random multiple of 90°; returns the images and k in 0..3.

    The labels cost nothing: they are made by the rotation itself.
    """
    k = np.random.default_rng(seed).integers(0, 4, size=len(x))
    out = np.empty_like(x)
    for r in range(4):
        out[k == r] = np.rot90(x[k == r], r, axes=(1, 2))
    return out, k.astype(np.int64)


def rotation_model(input_shape: Sequence[int], widths: Sequence[int] = (256, 128)) -> keras.Model:
    """The body and a 4-way softmax that predicts the rotation (compiled, Adam)."""
    model = classifier(input_shape, 4, widths)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class GAN:
    """A small MLP GAN whose discriminator has the body as its lower layers.

    Trained with ``train_on_batch`` only (no backend code): the discriminator is compiled on
    its own; the generator trains through a FROZEN copy of the discriminator inside
    ``combined``, whose weights are refreshed from the discriminator after every step.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        widths: Sequence[int] = (256, 128),
        latent: int = 32,
        learning_rate: float = 2e-4,
    ) -> None:
        self.latent, self.shape = latent, tuple(input_shape)
        n_pixels = int(np.prod(input_shape))
        self.generator = keras.Sequential(
            [
                keras.Input(shape=(latent,)),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(256, activation="relu"),
                keras.layers.Dense(n_pixels, activation="sigmoid"),
                keras.layers.Reshape(self.shape),
            ],
            name="generator",
        )
        self.discriminator = self._critic(widths, "discriminator")
        self.discriminator.compile(
            optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5), loss="binary_crossentropy"
        )
        self._frozen = self._critic(widths, "frozen_discriminator")
        self._frozen.trainable = False
        self.combined = keras.Sequential(
            [keras.Input(shape=(latent,)), self.generator, self._frozen]
        )
        self.combined.compile(
            optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5), loss="binary_crossentropy"
        )

    def _critic(self, widths: Sequence[int], name: str) -> keras.Model:
        return keras.Sequential(
            [
                keras.Input(shape=self.shape),
                *body_layers(widths),
                keras.layers.Dense(1, activation="sigmoid"),
            ],
            name=name,
        )

    def sample(self, z: np.ndarray) -> np.ndarray:
        """Images generated from the noise ``z`` (a direct call: no ``predict`` overhead)."""
        return np.asarray(keras.ops.convert_to_numpy(self.generator(z, training=False)))

    def fit(
        self,
        x: np.ndarray,
        *,
        epochs: int,
        batch_size: int = 64,
        round_steps: int = 10,
        seed: int = 0,
        n_samples: int = 8,
    ) -> tuple[np.ndarray, list[dict[str, float]]]:
        """Train in rounds of ``round_steps`` discriminator steps then as many generator steps.

        Returns samples of one fixed noise batch after each epoch ``(epochs, n, h, w)`` and the
        mean losses per epoch.
        """
        seed_everything(seed)
        rng = np.random.default_rng(seed)
        z_fixed = rng.normal(size=(n_samples, self.latent)).astype(np.float32)
        chunk = batch_size * round_steps
        if chunk > len(x):
            raise ValueError(f"a round needs {chunk} images, only {len(x)} given")
        y_d = np.concatenate(
            [np.full((chunk, 1), 0.9, np.float32), np.zeros((chunk, 1), np.float32)]
        )
        samples, log = [], []
        for _ in range(epochs):
            order = rng.permutation(len(x))
            d_losses, g_losses = [], []
            for start in range(0, len(x) - chunk + 1, chunk):
                fake = self.sample(rng.normal(size=(chunk, self.latent)).astype(np.float32))
                x_d = np.concatenate([x[order[start : start + chunk]], fake])
                d_losses += self.discriminator.fit(
                    x_d, y_d, batch_size=2 * batch_size, epochs=1, verbose=0
                ).history["loss"]
                self._frozen.set_weights(self.discriminator.get_weights())
                z = rng.normal(size=(chunk, self.latent)).astype(np.float32)
                g_losses += self.combined.fit(
                    z, np.ones((chunk, 1), np.float32), batch_size=batch_size, epochs=1, verbose=0
                ).history["loss"]
            samples.append(self.sample(z_fixed))
            log.append({"d_loss": float(np.mean(d_losses)), "g_loss": float(np.mean(g_losses))})
        return np.stack(samples), log


def few_labels(data: Splits, n_labels: int, seed: int) -> Splits:
    """``data`` with only ``n_labels`` training images (random, by ``seed``) kept labelled."""
    if n_labels > len(data.x_train):
        raise ValueError(f"n_labels={n_labels} exceeds the {len(data.x_train)} training images")
    pick = np.sort(np.random.default_rng(seed).choice(len(data.x_train), n_labels, replace=False))
    return Splits(
        data.x_train[pick],
        data.y_train[pick],
        data.x_valid,
        data.y_valid,
        data.x_test,
        data.y_test,
        data.class_names,
    )


def sample_rows(samples: np.ndarray, *, title: str | None = None, every: int = 1):
    """Generated images, one row per epoch (every ``every``-th); returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, style

    style()
    rows = list(range(every - 1, len(samples), every))
    if rows[-1] != len(samples) - 1:
        rows.append(len(samples) - 1)
    n = samples.shape[1]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.8, len(rows) * 0.85), squeeze=False)
    for r, epoch in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(samples[epoch, c], cmap="binary", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False), [sp.set_visible(False) for sp in ax.spines.values()]
            if c == 0:
                ax.set_ylabel(f"epoch {epoch + 1}", fontsize=8)
    return finish(fig, title)


def reconstructions(model: keras.Model, x: np.ndarray, n: int = 8, *, title: str | None = None):
    """Originals (top row) and the autoencoder's reconstructions (bottom row); returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, style

    style()
    recon = np.asarray(model.predict(x[:n], verbose=0))
    fig, axes = plt.subplots(2, n, figsize=(n * 0.8, 2.0))
    for c in range(n):
        for r, img in enumerate((x[c], recon[c])):
            axes[r][c].imshow(img, cmap="binary", vmin=0, vmax=1)
            axes[r][c].set_xticks([]), axes[r][c].set_yticks([])
            axes[r][c].grid(False), [sp.set_visible(False) for sp in axes[r][c].spines.values()]
    axes[0][0].set_ylabel("original", fontsize=8)
    axes[1][0].set_ylabel("rebuilt", fontsize=8)
    return finish(fig, title)


def reconstruction_mse(
    model: keras.Model, x: np.ndarray, x_reference: np.ndarray
) -> tuple[float, float]:
    """Mean squared pixel error of the autoencoder on ``x``, and of the mean image of
    ``x_reference`` (the best constant guess) on ``x``."""
    recon = np.asarray(model.predict(x, verbose=0, batch_size=512))
    mean_image = x_reference.mean(axis=0, keepdims=True)
    return float(((recon - x) ** 2).mean()), float(((mean_image - x) ** 2).mean())


def strategy_configs(
    pretrained: dict[str, keras.Model], input_shape: Sequence[int], n_classes: int
):
    """Few-label classifiers: from scratch, and one per pretrained model (its body reused,
    a new softmax output on top). Same architecture everywhere; only the start differs."""

    def on(model: keras.Model):
        return lambda s: (
            lambda: reuse_layers(model, 2, [keras.layers.Dense(n_classes, activation="softmax")])
        )

    configs = {"from scratch": lambda s: lambda: (classifier(input_shape, n_classes), [])}
    configs.update({name: on(model) for name, model in pretrained.items()})
    return configs
