"""Probes that look inside a Sequential Keras MLP: the loss gradient per layer, the hidden
activations, and the units that never fire.

Chapter 1 uses them at initialization (:func:`at_init`) and after training
(:class:`NeverPositive`, :func:`unit_report`). Gradients come from
:func:`dnnbook.autodiff.gradients`; everything here uses ``keras`` and NumPy only.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook import autodiff

# ACTIVATION_LAYERS: the layers whose output is a hidden activation (an Activation after
# Dense, or a layer such as LeakyReLU); their input is the pre-activation
from dnnbook.models import ACTIVATION_LAYERS


def kernel_gradient_norms(
    model: keras.Model, x: Any, y: Any, training: bool = False
) -> pd.DataFrame:
    """The L2 norm of the mean cross-entropy's gradient w.r.t. every Dense kernel.

    One row per Dense layer: ``layer`` (1 = next to the input; the last is the output
    layer), ``name`` (the variable's path), ``norm``. Inference mode unless ``training``
    (BN then normalizes with the batch's statistics, as during a fit).
    """
    grads = autodiff.gradients(model, x, y, training=training)
    paths = [lay.kernel.path for lay in model.layers if isinstance(lay, keras.layers.Dense)]
    return pd.DataFrame(
        [
            {"layer": i + 1, "name": p, "norm": float(np.linalg.norm(grads[p]))}
            for i, p in enumerate(paths)
        ]
    )


def hidden_activations(model: keras.Model, x: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pre-activation, activation) of every hidden activation layer
    (:data:`ACTIVATION_LAYERS`), input side first, in inference mode."""
    h = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    _, seen = autodiff.layer_pass(model, h, ACTIVATION_LAYERS)
    return [(keras.ops.convert_to_numpy(z), keras.ops.convert_to_numpy(a)) for z, a in seen]


def activation_stats(model: keras.Model, x: Any) -> pd.DataFrame:
    """Per hidden layer (all units pooled over the batch): ``mean`` and ``std`` of the
    activations and ``saturated``, the share of pre-activations z where the logistic
    slope σ′(z) = σ(z)(1 − σ(z)) is below 0.01 (a sigmoid unit in its flat tails)."""
    rows = []
    for i, (z, a) in enumerate(hidden_activations(model, x)):
        s = 1.0 / (1.0 + np.exp(-z.astype("float64")))
        rows.append(
            {
                "layer": i + 1,
                "mean": float(a.mean()),
                "std": float(a.std()),
                "saturated": float(np.mean(s * (1.0 - s) < 0.01)),
            }
        )
    return pd.DataFrame(rows)


def at_init(
    configs: Mapping[str, Callable[[], keras.Model]],
    x: Any,
    y: Any,
    seeds: Sequence[int],
    training: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gradient norms (:func:`kernel_gradient_norms`) and activation statistics
    (:func:`activation_stats`) of fresh models, one per config and seed, with ``config``
    and ``seed`` columns. ``configs`` maps a name to a builder of an (uncompiled) model;
    every config gets the same seeds, so differences come from the config, not the draw."""
    from dnnbook.runtime import seed_everything

    norms, acts = [], []
    for name, build in configs.items():
        for seed in seeds:
            seed_everything(int(seed))
            model = build()
            keys = {"config": name, "seed": int(seed)}
            norms.append(kernel_gradient_norms(model, x, y, training).assign(**keys))
            acts.append(activation_stats(model, x).assign(**keys))
    return pd.concat(norms, ignore_index=True), pd.concat(acts, ignore_index=True)


def first_to_last(norms: pd.DataFrame) -> float:
    """The first hidden layer's gradient norm over the last hidden layer's (one run's
    :func:`kernel_gradient_norms`, whose last row is the output layer)."""
    v = norms.sort_values("layer")["norm"].to_numpy()
    return float(v[0] / v[-2]) if v[-2] > 0 else float("inf")


def growth_per_layer(norms: pd.DataFrame) -> float:
    """The factor by which the gradient norm grows per hidden layer on its way down, as a
    geometric mean: (first / last hidden) ** (1 / (hidden layers − 1)). Below 1 the
    gradient vanishes, above 1 it explodes."""
    hidden = len(norms) - 1
    return float(first_to_last(norms) ** (1.0 / max(hidden - 1, 1)))


def spread(norms: pd.DataFrame) -> float:
    """Largest over smallest gradient norm of the hidden layers (10: one order of
    magnitude); infinite when one is 0."""
    v = norms.sort_values("layer")["norm"].to_numpy()[:-1]
    return float(v.max() / v.min()) if v.min() > 0 else float("inf")


def by_run(
    frame: pd.DataFrame, fn: Callable[[pd.DataFrame], float], keys: Sequence[str] = ("seed",)
) -> pd.DataFrame:
    """``fn`` of each run's rows, as a table: one row per ``keys`` (default: seed), one
    column per config (e.g. ``by_run(norms, growth_per_layer)``)."""
    groups = frame.groupby(["config", *keys], observed=True, sort=False)
    values = groups.apply(fn, include_groups=False).rename("value").reset_index()
    table = values.pivot(index=list(keys), columns="config", values="value")
    return table[list(dict.fromkeys(values["config"]))]  # the configs in their order


def never_positive(model: keras.Model, x: Any) -> np.ndarray:
    """One bool per hidden unit (all layers, input side first): its pre-activation is ≤ 0
    on every example of ``x``. A ReLU unit like that outputs 0 and passes no gradient on
    these examples."""
    return np.concatenate(
        [np.all(z.reshape(len(z), -1) <= 0.0, axis=0) for z, _ in hidden_activations(model, x)]
    )


class NeverPositive:
    """Follows, per model, the hidden units never positive on ``x`` (:func:`never_positive`).

    Called on a model (an ``epoch_logs`` function of :func:`dnnbook.experiments.run`, run
    after every epoch) it returns their share and keeps two masks: the first seen and the
    latest. :meth:`woke` counts the units never positive at the first call that fire on
    some example of ``x`` at the latest.
    """

    def __init__(self, x: Any) -> None:
        self.x = x
        self.first: dict[int, np.ndarray] = {}
        self.latest: dict[int, np.ndarray] = {}

    def __call__(self, model: keras.Model) -> float:
        mask = never_positive(model, self.x)
        self.first.setdefault(id(model), mask)
        self.latest[id(model)] = mask
        return float(mask.mean())

    def woke(self, model: keras.Model) -> dict[str, float]:
        """``never`` (never positive at the first call), ``woke`` (of those, firing at the
        latest) and ``woke_share`` (woke / never; NaN when there were none)."""
        first, latest = self.first[id(model)], self.latest[id(model)]
        never, woke = int(first.sum()), int((first & ~latest).sum())
        return {"never": never, "woke": woke, "woke_share": woke / never if never else np.nan}


def dead_unit_gradients(model: keras.Model, x: Any, y: Any) -> np.ndarray:
    """The norm of the loss gradient w.r.t. the incoming weights of each unit never
    positive on ``x``: exactly 0 for a ReLU unit, not for a LeakyReLU unit."""
    grads = autodiff.gradients(model, x, y)
    dense = [lay for lay in model.layers if isinstance(lay, keras.layers.Dense)]
    out = []
    for layer, (z, _) in zip(dense, hidden_activations(model, x)):
        never = np.all(z.reshape(len(z), -1) <= 0.0, axis=0)
        out.append(np.linalg.norm(grads[layer.kernel.path], axis=0)[never])
    return np.concatenate(out) if out else np.zeros(0)


def total_gradient_norm(model: keras.Model, x: Any, y: Any) -> float:
    """Norm of the loss gradient w.r.t. all trainable weights at once: 0 when nothing flows
    back from the loss, whatever the activations (e.g. a saturated softmax)."""
    grads = autodiff.gradients(model, x, y).values()
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads)))


def unit_report(model: keras.Model, tracker: NeverPositive, y: Any) -> dict[str, float]:
    """One trained model's units on ``tracker.x``: ``dead_fraction`` (never positive),
    ``max_grad`` (the largest gradient norm of such a unit's incoming weights),
    ``net_grad`` (:func:`total_gradient_norm`) and :meth:`NeverPositive.woke`'s counts."""
    grads = dead_unit_gradients(model, tracker.x, y)
    return {
        "dead_fraction": float(never_positive(model, tracker.x).mean()),
        "max_grad": float(grads.max()) if grads.size else np.nan,
        "net_grad": total_gradient_norm(model, tracker.x, y),
        **tracker.woke(model),
    }
