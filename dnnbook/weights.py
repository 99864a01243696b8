"""Statistics of a trained network's Dense kernels (norms, sparsity, each unit's incoming
norm) and the two figures of chapter 4 that show them."""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
import numpy as np


def kernels(model: keras.Model) -> list[np.ndarray]:
    """The Dense kernels of ``model`` as NumPy arrays ``(inputs, units)``, input to output."""
    return [
        keras.ops.convert_to_numpy(layer.kernel.value)
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]


def unit_norms(kernel: np.ndarray) -> np.ndarray:
    """The L2 norm of every unit's incoming weights (the columns of a Dense kernel)."""
    return np.sqrt((np.asarray(kernel, dtype=np.float64) ** 2).sum(axis=0))


def weight_stats(model: keras.Model, tol: float = 1e-3) -> dict[str, float]:
    """The L2 norm of all kernels, the share of weights with ``|w| < tol`` and the largest
    incoming norm of any unit."""
    ks = kernels(model)
    flat = np.concatenate([k.ravel() for k in ks]).astype(np.float64)
    return {
        "weight_norm": float(np.sqrt((flat**2).sum())),
        "near_zero": float(np.mean(np.abs(flat) < tol)),
        "max_unit_norm": float(max(unit_norms(k).max() for k in ks)),
    }


def weights_figure(
    models: Mapping[tuple[str, int], keras.Model],
    configs: Sequence[str],
    seed: int,
    *,
    tol: float = 1e-3,
    title: str | None = None,
):
    """Left: the histogram of |w| (log scale) per config for one seed, with ``tol`` dashed.
    Right: the L2 norm of all kernels per config (bar: mean, dots: seeds)."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, (ax, axn) = plt.subplots(1, 2, figsize=(9.0, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    bins = np.logspace(-8, 0.5, 60)
    seeds = sorted(s for c, s in models if c == configs[0])
    for i, name in enumerate(configs):
        w = np.abs(np.concatenate([k.ravel() for k in kernels(models[(name, seed)])]))
        w = np.clip(w, bins[0], None)
        ax.hist(w, bins=bins, histtype="step", lw=1.5, color=f"C{i}", label=name)
        norms = [weight_stats(models[(name, s)], tol)["weight_norm"] for s in seeds]
        axn.scatter([i] * len(norms), norms, color=f"C{i}", zorder=3)
        axn.bar(i, np.mean(norms), color=f"C{i}", alpha=0.35)
    ax.axvline(tol, color="grey", ls="--", lw=1, label=f"|w| = {tol:g}")
    ax.set_xscale("log")
    ax.set_xlabel("|weight| (log scale; values below 1e-8 drawn at 1e-8)")
    ax.set_ylabel(f"number of weights (seed {seed})")
    ax.legend(loc="upper left")
    axn.set_xticks(range(len(configs)), configs, rotation=20)
    axn.set_ylabel("L2 norm of all kernels")
    axn.set_title("weight norm (bar: mean, dots: seeds)", fontsize=9)
    return plots.finish(fig, title)


def unit_norms_figure(
    models: Mapping[tuple[str, int], keras.Model],
    bounds: Mapping[str, float],
    *,
    title: str | None = None,
):
    """Histogram of every unit's incoming norm (all layers and seeds) per config, each
    max-norm bound dashed (``bounds`` maps a config to its r, ``inf`` for none)."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    found = {
        name: np.concatenate(
            [unit_norms(k) for (c, _), m in models.items() if c == name for k in kernels(m)]
        )
        for name in bounds
    }
    bins = np.linspace(0, max(v.max() for v in found.values()) * 1.02, 60)
    for i, (name, r) in enumerate(bounds.items()):
        ax.hist(found[name], bins=bins, histtype="step", lw=1.5, color=f"C{i}", label=name)
        if np.isfinite(r):
            ax.axvline(r, color=f"C{i}", ls="--", lw=1)
    ax.set_xlabel("norm of a unit's incoming weights (dashed: the bound r)")
    ax.set_ylabel("number of units")
    ax.legend(loc="upper right")
    return plots.finish(fig, title, ax)
