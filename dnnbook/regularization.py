"""Chapter 4, regularization: measurements of what l1, l2, dropout and max-norm do, and MC dropout.

Noisy labels, the loss split into its data and penalty parts, weight statistics (norms,
sparsity, max-norm bounds) and after-training generalization gaps. Predictive uncertainty:
MC dropout keeps dropout on at prediction time and averages ``n_samples`` stochastic forward
passes; negative log-likelihood and calibration (ECE, reliability) score the probabilities.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook import stats
from dnnbook.claims import Check
from dnnbook.data import Splits


def flip_labels(
    y: np.ndarray, fraction: float, n_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Give exactly ``round(fraction * len(y))`` labels a different, uniformly drawn class.

    Returns the noisy labels and the boolean mask of the flipped ones.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    y = np.asarray(y).copy()
    flipped = np.zeros(len(y), dtype=bool)
    flipped[rng.permutation(len(y))[: int(round(fraction * len(y)))]] = True
    y[flipped] = (y[flipped] + rng.integers(1, n_classes, int(flipped.sum()))) % n_classes
    return y, flipped


def with_label_noise(splits: Splits, fraction: float, seed: int) -> Splits:
    """The same splits with ``fraction`` of the TRAINING labels flipped (validation and test stay clean)."""
    y, _ = flip_labels(splits.y_train, fraction, splits.n_classes, seed)
    return Splits(
        splits.x_train,
        y,
        splits.x_valid,
        splits.y_valid,
        splits.x_test,
        splits.y_test,
        splits.class_names,
    )


def penalty(model: keras.Model) -> float:
    """The regularization loss at the current weights: the sum of ``model.losses``."""
    losses = model.losses
    return float(sum(float(keras.ops.convert_to_numpy(v)) for v in losses)) if losses else 0.0


def cross_entropy(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    training: bool = False,
    batch_size: int = 1000,
) -> tuple[float, float]:
    """Mean cross-entropy (the data part of the loss, no penalty) and accuracy on ``(x, y)``.

    ``training=True`` runs the forward pass with dropout on, as ``fit`` does.
    """
    from dnnbook.regularization import accuracy, nll, predict_proba

    probs = predict_proba(model, x, training=training, batch_size=batch_size)
    return nll(probs, y), accuracy(probs, y)


def data_loss(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """The model's compiled loss function on its predictions for ``(x, y)``, without the
    penalty: the mean over the examples. Computed as ``evaluate`` computes it on each backend
    (under TensorFlow from the softmax's logits; under JAX and PyTorch from probabilities
    clipped to ``[1e-7, 1 − 1e-7]``), which a cross-entropy of the predicted probabilities
    would not match for examples the model gives almost no probability."""
    fn = keras.losses.get(model.loss)
    total = 0.0
    for i in range(0, len(x), batch_size):
        values = fn(y[i : i + batch_size], model(x[i : i + batch_size], training=False))
        values = keras.ops.convert_to_numpy(values).astype(np.float64)
        total += values.sum() if values.ndim else float(values) * len(x[i : i + batch_size])
    return float(total / len(x))


def loss_parts(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The loss Keras reports on ``(x, y)`` (``evaluate``) next to its two parts, measured apart:
    the data part (:func:`data_loss`) and the penalty (the regularization loss)."""
    result = model.evaluate(x, y, verbose=0, batch_size=1000)
    total = float(result[0] if isinstance(result, (list, tuple)) else result)
    return {"reported": total, "data": data_loss(model, x, y), "penalty": penalty(model)}


def loss_parts_table(
    models: Mapping[str, keras.Model], x: np.ndarray, y: np.ndarray
) -> pd.DataFrame:
    """:func:`loss_parts` of each named model, one row per name, rounded to 4 decimals."""
    return pd.DataFrame({name: loss_parts(m, x, y) for name, m in models.items()}).T.round(4)


def kernels(model: keras.Model) -> list[np.ndarray]:
    """The Dense kernels of ``model`` as NumPy arrays, shape ``(inputs, units)``, input to output."""
    return [
        keras.ops.convert_to_numpy(layer.kernel.value)
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]


def unit_norms(kernel: np.ndarray) -> np.ndarray:
    """The L2 norm of every unit's incoming weight vector (the columns of a Dense kernel)."""
    return np.sqrt((np.asarray(kernel, dtype=np.float64) ** 2).sum(axis=0))


def weight_stats(model: keras.Model, tol: float = 1e-3) -> dict[str, float]:
    """Whole-network kernel statistics: L2 norm, share of weights with ``|w| < tol``, largest unit norm."""
    ks = kernels(model)
    flat = np.concatenate([k.ravel() for k in ks]).astype(np.float64)
    return {
        "weight_norm": float(np.sqrt((flat**2).sum())),
        "near_zero": float(np.mean(np.abs(flat) < tol)),
        "max_unit_norm": float(max(unit_norms(k).max() for k in ks)),
    }


def after_training(
    models: Mapping[tuple[str, int], keras.Model],
    data: Splits,
    history: pd.DataFrame | None = None,
    tol: float = 1e-3,
) -> pd.DataFrame:
    """One row per trained ``(config, seed)``: training loss and accuracy measured after training
    with dropout off and (loss) with dropout on, validation and test loss and accuracy, the
    accuracy gap (train − validation), the penalty and the weight statistics. With ``history``
    (from :func:`dnnbook.experiments.run`), adds ``fit_loss``: the training loss fit reported for
    the last epoch. ``config`` is an ordered categorical in the order of ``models``."""
    rows = []
    for (config, seed), model in models.items():
        tr_loss, tr_acc = cross_entropy(model, data.x_train, data.y_train)
        on_loss, _ = cross_entropy(model, data.x_train, data.y_train, training=True)
        va_loss, va_acc = cross_entropy(model, data.x_valid, data.y_valid)
        te_loss, te_acc = cross_entropy(model, data.x_test, data.y_test)
        rows.append(
            {
                "config": config,
                "seed": seed,
                "train_loss": tr_loss,
                "train_loss_dropout_on": on_loss,
                "train_accuracy": tr_acc,
                "val_loss": va_loss,
                "val_accuracy": va_acc,
                "test_loss": te_loss,
                "test_accuracy": te_acc,
                "gap": tr_acc - va_acc,
                "penalty": penalty(model),
                **weight_stats(model, tol),
            }
        )
    out = pd.DataFrame(rows)
    if history is not None:
        last = history.loc[
            history.groupby(["config", "seed"], observed=True)["epoch"].idxmax(),
            ["config", "seed", "loss"],
        ].rename(columns={"loss": "fit_loss"})
        last["config"] = last["config"].astype(str)
        out = out.merge(last, on=["config", "seed"], how="left")
    names = list(dict.fromkeys(out["config"]))
    out["config"] = pd.Categorical(out["config"], categories=names, ordered=True)
    return out


def by_seed(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` of a per-run frame (:func:`after_training`) as a table: seeds × configs."""
    return frame.pivot(index="seed", columns="config", values=column)


def changes(frame: pd.DataFrame, column: str, base: str = "none") -> pd.DataFrame:
    """Per config: the mean of ``column`` over seeds and its change from ``base``, paired by
    seed, with the 95% CI of that change (``low``, ``high``)."""
    t = by_seed(frame, column)
    rows = []
    for name in t.columns:
        d = stats.paired_diff(t[name].to_numpy(), t[base].to_numpy())
        rows.append(
            {"config": name, column: t[name].mean(), "change": d.mean, "low": d.low, "high": d.high}
        )
    return pd.DataFrame(rows).set_index("config")


def diverged(history: pd.DataFrame, chance_loss: float) -> pd.Series:
    """Per ``(config, seed)``: True when the training loss became non-finite or ended above
    ``chance_loss`` (the loss of predicting the uniform distribution, ``ln(classes)``)."""

    def one(g: pd.DataFrame) -> bool:
        loss = g.sort_values("epoch")["loss"].to_numpy(dtype=float)
        return bool((~np.isfinite(loss)).any() or loss[-1] > chance_loss)

    return history.groupby(["config", "seed"], observed=True)[["epoch", "loss"]].apply(one)


def summary(frame: pd.DataFrame, columns: tuple[str, ...], digits: int = 3) -> pd.DataFrame:
    """Per config: ``mean ± std`` strings of ``columns`` over seeds (a compact display table)."""
    g = frame.groupby("config", observed=True)[list(columns)]
    mean, std = g.mean(), g.std(ddof=1)
    return pd.DataFrame(
        {c: [f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(mean[c], std[c])] for c in columns},
        index=mean.index,
    )


# --- the conditions of the chapter's claims -------------------------------------------------


def _ci(d: stats.Interval) -> str:
    return f"{d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"


def overfits(frame: pd.DataFrame, config: str = "none", threshold: float = 0.0) -> Check:
    """The 95% CI of ``config``'s train − validation accuracy gap lies above ``threshold``
    (with noisy training labels and clean validation labels, a network that did not learn the
    noise has a negative gap)."""
    gap = stats.mean_ci(frame.loc[frame["config"] == config, "gap"].to_numpy())
    return Check(gap.low > threshold, f"gap {gap}", gap.low - threshold)


def shrinks(frame: pd.DataFrame, config: str, base: str = "none", ratio: float = 0.7) -> Check:
    """In every seed, ``config``'s whole-network weight norm is below ``ratio`` × ``base``'s."""
    t = by_seed(frame, "weight_norm")
    worst = float((t[config] / t[base]).max())
    return Check(worst < ratio, f"largest ratio over {len(t)} seeds: {worst:.2f}", ratio - worst)


def sparser(frame: pd.DataFrame, config: str, base: str = "none", extra: float = 0.2) -> Check:
    """In every seed, the share of near-zero weights of ``config`` exceeds ``base``'s by ``extra``."""
    z = by_seed(frame, "near_zero")
    least = float((z[config] - z[base]).min())
    return Check(
        least > extra,
        f"near-zero share: {config} {z[config].mean():.1%} vs {base} "
        f"{z[base].mean():.1%}; smallest difference {least:.1%}",
        least - extra,
    )


def loss_adds_up(parts: pd.DataFrame, tol: float = 2e-3, share: float = 0.1) -> Check:
    """Per config (rows of :func:`loss_parts` values): reported = data + penalty within ``tol``,
    the penalty is over ``share`` of the reported loss for every penalized config and 0 for
    ``none``. The margin is the smaller of the two slacks."""
    err = float((parts["reported"] - parts["data"] - parts["penalty"]).abs().max())
    shares = (parts["penalty"] / parts["reported"]).drop("none")
    holds = err < tol and shares.min() > share and parts.loc["none", "penalty"] == 0
    listed = ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
    return Check(
        bool(holds),
        f"largest |reported − data − penalty| = {err:.4f}; penalty share {listed}",
        min(tol - err, float(shares.min()) - share),
    )


def lower(
    frame: pd.DataFrame, column: str, low: str, high: str, *, one_sided: bool = False
) -> Check:
    """``column`` is lower for ``low`` than for ``high``: the 95% CI of ``high − low``, paired
    by seed, lies above 0 (margin: its lower end). E.g. ``lower(after, "gap", "dropout 0.5",
    "none")``: dropout narrows the generalization gap. ``one_sided`` uses the one-sided 95%
    bound (the lower end of the 90% CI) for a claim about one direction only."""
    from dnnbook import experiments

    label = f"{column}({high}) − {column}({low})"
    return experiments.paired_check(
        by_seed(frame, column), high, low, one_sided=one_sided, label=label
    )


def narrows_beyond_accuracy(frame: pd.DataFrame, config: str, base: str = "none") -> Check:
    """``config`` narrows the train − validation gap (from ``base``'s) by more than it raises
    the test accuracy: the 95% CI of ``[gap(base) − gap(config)] − [test(config) −
    test(base)]``, paired by seed, lies above 0, i.e. most of the narrowing is a lower fit of
    the training set, not a better test accuracy (margin: the CI's lower end)."""
    gap, test = by_seed(frame, "gap"), by_seed(frame, "test_accuracy")
    narrowed, gained = gap[base] - gap[config], test[config] - test[base]
    d = stats.paired_diff(narrowed.to_numpy(), gained.to_numpy())
    return Check(
        d.low > 0,
        f"gap narrowed by {narrowed.mean():+.4f}, test accuracy changed by "
        f"{gained.mean():+.4f} (means); the difference {d}",
        d.low,
    )


def lower_in_most_seeds(frame: pd.DataFrame, column: str, low: str, high: str) -> Check:
    """``column`` is lower for ``low`` than for ``high`` in most seeds: the median over seeds of
    the per-seed difference ``high − low`` lies above 0 (it is the margin)."""
    t = by_seed(frame, column)
    diff = t[high] - t[low]
    listed = ", ".join(f"{s}: {v:+.3f}" for s, v in diff.items())
    median = float(diff.median())
    return Check(
        median > 0,
        f"{column}({high}) − {column}({low}) per seed: {listed}; "
        f"lower in {int((diff > 0).sum())} of {len(diff)}, median {median:+.3f}",
        median,
    )


def dropout_loss_ratio(frame: pd.DataFrame, config: str, ratio: float = 1.1) -> Check:
    """In every seed, ``config``'s training loss with dropout on is over ``ratio`` × dropout off."""
    d = frame[frame["config"] == config]
    least = float((d["train_loss_dropout_on"] / d["train_loss"]).min())
    return Check(
        least > ratio, f"smallest ratio on/off over {len(d)} seeds: {least:.2f}", least - ratio
    )


def fit_loss_overstates(frame: pd.DataFrame, config: str, base: str = "none") -> Check:
    """In every seed, the training loss fit reported for the last epoch exceeds the training
    loss with dropout off after training by more for ``config`` than for ``base`` (without
    dropout the two differ only because fit averages over an epoch of changing weights). The
    margin is the smallest per-seed excess, in nats."""
    fit, off = by_seed(frame, "fit_loss"), by_seed(frame, "train_loss")
    over = fit - off
    least = float((over[config] - over[base]).min())
    return Check(
        least > 0,
        f"fit reports − dropout off (means): {config} "
        f"{fit[config].mean():.3f} − {off[config].mean():.3f}, {base} "
        f"{fit[base].mean():.3f} − {off[base].mean():.3f}; smallest excess {least:.3f}",
        least,
    )


def bounded(frame: pd.DataFrame, bounds: Mapping[str, float], free: str = "none") -> Check:
    """Every unit's incoming norm is ≤ r in each config of ``bounds`` (name → r), and the
    ``free`` network has a unit above the largest r (the bound is active). The margin is the
    smaller of the two relative slacks."""
    worst = {
        name: float(frame.loc[frame["config"] == name, "max_unit_norm"].max())
        for name in [free, *bounds]
    }
    inside = min(1e-5 + 1 - worst[name] / r for name, r in bounds.items())  # 1e-5: rounding
    active = worst[free] / max(bounds.values()) - 1
    listed = ", ".join(f"{k} {v:.3f}" for k, v in worst.items())
    return Check(inside >= 0 and active > 0, f"largest unit norm: {listed}", min(inside, active))


def mostly_diverged(
    history: pd.DataFrame, config: str, chance_loss: float, share: float = 0.5
) -> Check:
    """More than ``share`` of ``config``'s runs diverged (:func:`diverged`: a non-finite training
    loss, or a last one above ``chance_loss``); the margin is the diverged share minus ``share``."""
    counts = diverged(history, chance_loss).groupby(level=0, observed=True).agg(["sum", "size"])
    found = counts.loc[config, "sum"] / counts.loc[config, "size"]
    listed = ", ".join(f"{k} {int(r['sum'])} of {int(r['size'])}" for k, r in counts.iterrows())
    return Check(bool(found > share), f"diverged runs by the end: {listed}", float(found - share))


def underconfident(raw: Mapping[int, Mapping[str, np.ndarray]], labels: np.ndarray) -> Check:
    """In every seed the single pass's mean confidence (top class probability) is below its
    accuracy (``raw`` as :func:`compare_mc` returns it; margin: the smallest difference)."""
    rows = {
        s: (r["deterministic"].max(axis=1).mean(), accuracy(r["deterministic"], labels))
        for s, r in raw.items()
    }
    least = min(acc - conf for conf, acc in rows.values())
    listed = ", ".join(
        f"seed {s}: confidence {c:.3f} vs accuracy {a:.3f}" for s, (c, a) in rows.items()
    )
    return Check(bool(least > 0), listed, float(least))


def mc_pairs(mc: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``metric`` of MC dropout and of the single pass, per seed in the same order, from the
    frame :func:`compare_mc` returns."""
    single = mc[mc["method"] == "single pass"].set_index("seed")[metric]
    multi = mc[mc["method"] != "single pass"].set_index("seed")[metric]
    return multi.loc[single.index].to_numpy(), single.to_numpy()


def equivalent(a: np.ndarray, b: np.ndarray, margin: float) -> Check:
    """``a`` and ``b`` (paired by seed) do not differ by more than ``margin``: the paired TOST
    of :func:`dnnbook.stats.equivalent` (the 90% CI of ``a − b`` inside ±margin)."""
    eq = stats.equivalent(a, b, margin)
    return Check(eq.holds, str(eq), eq.slack)


def gain_below(a: np.ndarray, b: np.ndarray, margin: float) -> Check:
    """One-sided: ``a`` is not lower than ``b`` by ``margin`` or more (a loss that does not
    improve by that much): the lower end of the 90% CI of ``a − b``, paired by seed (a 95%
    one-sided bound), lies above ``−margin``."""
    d = stats.paired_diff(a, b, level=0.9)
    return Check(
        d.low > -margin,
        f"difference {d.mean:+.4f}, one-sided 95% bound {d.low:+.4f} against −{margin:g} (n={d.n})",
        d.low + margin,
    )


def regularizer(kind: str, l1: float = 0.0, l2: float = 0.0) -> Any:
    """A kernel regularizer by name: ``none``, ``l1``, ``l2`` or ``l1_l2`` (both factors passed
    explicitly: Keras 3's ``l1_l2`` defaults both to zero)."""
    if kind == "none":
        return None
    if kind == "l1":
        return keras.regularizers.L1(l1)
    if kind == "l2":
        return keras.regularizers.L2(l2)
    if kind == "l1_l2":
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    raise ValueError(f"unknown regularizer {kind!r}; choose one of: none, l1, l2, l1_l2")


# --- figures -------------------------------------------------------------------------------


def loss_split_figure(history: pd.DataFrame, configs: tuple[str, ...], *, title: str | None = None):
    """Per config, the training loss fit reports per epoch and its penalty part (mean over seeds)."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, axes = plt.subplots(
        1, len(configs), figsize=(3.1 * len(configs), 3.3), sharey=True, squeeze=False
    )
    for ax, name in zip(axes[0], configs):
        g = history[history["config"] == name].groupby("epoch")[["loss", "penalty"]].mean()
        ax.fill_between(g.index, 0, g["penalty"], color="C1", alpha=0.5, label="penalty part")
        ax.fill_between(
            g.index,
            g["penalty"],
            g["loss"],
            color="C0",
            alpha=0.4,
            label="data part (cross-entropy)",
        )
        ax.plot(g.index, g["loss"], color="C0", label="reported training loss")
        ax.set_title(name)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("training loss (nats)")
    axes[0][-1].legend(loc="upper right")
    return plots.finish(fig, title)


def weights_figure(
    models: Mapping[tuple[str, int], keras.Model],
    configs: tuple[str, ...],
    seed: int,
    *,
    tol: float = 1e-3,
    title: str | None = None,
):
    """Left: histogram of |w| (log scale) per config for one seed, with the near-zero threshold.
    Right: the whole-network weight norm per config and seed."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, (ax, axn) = plt.subplots(1, 2, figsize=(9.0, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    bins = np.logspace(-8, 0.5, 60)
    for i, name in enumerate(configs):
        w = np.abs(np.concatenate([k.ravel() for k in kernels(models[(name, seed)])]))
        ax.hist(
            np.clip(w, bins[0], None), bins=bins, histtype="step", lw=1.5, color=f"C{i}", label=name
        )
    ax.axvline(tol, color="grey", ls="--", lw=1, label=f"|w| = {tol:g}")
    ax.set_xscale("log")
    ax.set_xlabel("|weight| (log scale; values below 1e-8 drawn at 1e-8)")
    ax.set_ylabel(f"number of weights (seed {seed})")
    ax.legend(loc="upper left")
    seeds = sorted({s for c, s in models if c == configs[0]})
    for i, name in enumerate(configs):
        norms = [weight_stats(models[(name, s)], tol)["weight_norm"] for s in seeds]
        axn.scatter([i] * len(norms), norms, color=f"C{i}", zorder=3)
        axn.bar(i, np.mean(norms), color=f"C{i}", alpha=0.35)
    axn.set_xticks(range(len(configs)), configs, rotation=20)
    axn.set_ylabel("L2 norm of all kernels")
    axn.set_title("weight norm (bar: mean, dots: seeds)", fontsize=9)
    return plots.finish(fig, title)


def gap_figure(frame: pd.DataFrame, *, title: str | None = None):
    """Training accuracy (dropout off, noisy labels) and validation accuracy per config and seed."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    names = (
        list(frame["config"].cat.categories)
        if hasattr(frame["config"], "cat")
        else list(dict.fromkeys(frame["config"]))
    )
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for i, name in enumerate(names):
        g = frame[frame["config"] == name]
        ax.vlines(
            i, g["val_accuracy"].mean(), g["train_accuracy"].mean(), color="grey", lw=6, alpha=0.3
        )
        ax.scatter(
            [i - 0.08] * len(g),
            g["train_accuracy"],
            color="C0",
            s=18,
            label="training (noisy labels, dropout off)" if i == 0 else None,
        )
        ax.scatter(
            [i + 0.08] * len(g),
            g["val_accuracy"],
            color="C1",
            s=18,
            marker="s",
            label="validation" if i == 0 else None,
        )
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("accuracy after training")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # room for the legend above the data
    ax.legend(loc="upper center", ncol=2)
    ax.set_title("grey bar: the generalization gap (mean over seeds)", fontsize=9)
    return plots.finish(fig, title)


def unit_norms_figure(
    models: Mapping[tuple[str, int], keras.Model],
    configs: Mapping[str, float],
    *,
    title: str | None = None,
):
    """Histogram of every unit's incoming-weight norm (all layers, all seeds) per config, with
    each max-norm bound ``r`` drawn as a dashed line (``configs`` maps name → r, inf for none)."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    allnorms = {
        name: np.concatenate(
            [unit_norms(k) for (c, _), m in models.items() if c == name for k in kernels(m)]
        )
        for name in configs
    }
    hi = max(v.max() for v in allnorms.values())
    bins = np.linspace(0, hi * 1.02, 60)
    for i, (name, r) in enumerate(configs.items()):
        ax.hist(allnorms[name], bins=bins, histtype="step", lw=1.5, color=f"C{i}", label=name)
        if np.isfinite(r):
            ax.axvline(r, color=f"C{i}", ls="--", lw=1)
    ax.set_xlabel("norm of a unit's incoming weights (dashed: the bound r)")
    ax.set_ylabel("number of units")
    ax.legend(loc="upper right")
    return plots.finish(fig, title, ax)


def factory(
    data: Splits,
    *,
    depth: int,
    width: int,
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    momentum: float = 0.0,
    reg: str = "none",
    l1: float = 0.0,
    l2: float = 0.0,
    dropout: float = 0.0,
    max_norm: float | None = None,
):
    """A function returning a fresh compiled MLP for ``data`` with one regularizer switched on:
    a kernel penalty (``reg``), ``dropout`` after each hidden block, or a ``max_norm`` bound on
    every unit's incoming weights (``keras.constraints.MaxNorm(r, axis=0)``)."""
    from dnnbook.models import build_mlp, compile_classifier

    def make() -> keras.Model:
        model = build_mlp(
            data.input_shape,
            data.n_classes,
            depth=depth,
            width=width,
            dropout=dropout,
            kernel_regularizer=regularizer(reg, l1, l2),
            kernel_constraint=keras.constraints.MaxNorm(max_norm, axis=0) if max_norm else None,
        )
        opt = (
            keras.optimizers.Adam(learning_rate=learning_rate)
            if optimizer == "adam"
            else keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
        )
        return compile_classifier(model, opt)

    return make


def dropout_losses_figure(
    frame: pd.DataFrame, configs: tuple[str, ...], *, title: str | None = None
):
    """Grouped bars per config (mean over seeds, dots per seed): the training loss fit reported
    in the last epoch, the training loss after training with dropout on and off, the validation loss."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    cols = {
        "fit_loss": "training, as fit reports it",
        "train_loss_dropout_on": "training, dropout on",
        "train_loss": "training, dropout off",
        "val_loss": "validation",
    }
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / len(cols)
    for j, (col, lab) in enumerate(cols.items()):
        for i, name in enumerate(configs):
            v = frame.loc[frame["config"] == name, col].to_numpy()
            x = i + (j - (len(cols) - 1) / 2) * width
            ax.bar(
                x,
                v.mean(),
                width=width * 0.95,
                color=f"C{j}",
                alpha=0.6,
                label=lab if i == 0 else None,
            )
            ax.scatter([x] * len(v), v, color=f"C{j}", s=8, zorder=3)
    ax.set_xticks(range(len(configs)), configs)
    ax.set_ylabel("cross-entropy loss (nats)")
    ax.legend(loc="upper left", ncol=2)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.25)
    return plots.finish(fig, title, ax)


EPS = 1e-12


def predict_proba(
    model: keras.Model, x: np.ndarray, *, training: bool = False, batch_size: int = 1000
) -> np.ndarray:
    """Class probabilities of one forward pass, ``(n, classes)``; ``training=True`` keeps dropout on."""
    parts = [
        keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=training))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts).astype(np.float64)


def mc_samples(
    model: keras.Model, x: np.ndarray, n_samples: int = 30, *, batch_size: int = 1000
) -> np.ndarray:
    """``n_samples`` stochastic passes with dropout on: probabilities of shape ``(n_samples, n, classes)``."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    return np.stack(
        [predict_proba(model, x, training=True, batch_size=batch_size) for _ in range(n_samples)]
    )


def mc_predict(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the sample axis of MC probabilities ``(T, n, classes)``."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 3:
        raise ValueError(f"expected samples of shape (T, n, classes), got {samples.shape}")
    return samples.mean(axis=0), samples.std(axis=0)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (cross-entropy, nats) of integer ``labels`` under ``probs``."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=int)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], EPS, 1.0))))


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose most probable class is the label."""
    return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Reliability-diagram data: per equal-width confidence bin, its count, mean confidence and accuracy.

    Confidence is the top class probability; bin ``k`` holds confidences in ``(k/n, (k+1)/n]``
    (the first bin also holds 0). Empty bins have count 0 and NaN means.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    rows = []
    for k in range(n_bins):
        m = idx == k
        rows.append(
            {
                "low": edges[k],
                "high": edges[k + 1],
                "count": int(m.sum()),
                "confidence": float(conf[m].mean()) if m.any() else np.nan,
                "accuracy": float(correct[m].mean()) if m.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean |accuracy − confidence| over bins."""
    table = reliability(probs, labels, n_bins)
    used = table[table["count"] > 0]
    return float(
        (used["count"] * (used["accuracy"] - used["confidence"]).abs()).sum() / table["count"].sum()
    )


def entropy(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy (nats) of each row of ``probs``."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def scores(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Accuracy, NLL and ECE of one set of predictions."""
    return {
        "accuracy": accuracy(probs, labels),
        "nll": nll(probs, labels),
        "ece": ece(probs, labels, n_bins),
    }


def compare_mc(
    models: dict, x: np.ndarray, y: np.ndarray, *, n_samples: int = 30, n_bins: int = 10
) -> tuple[pd.DataFrame, dict]:
    """Score every model (keyed by seed) with one deterministic pass and with MC dropout.

    Returns a tidy frame (``seed, method, accuracy, nll, ece``) and, per seed, the MC
    samples, so the figures can reuse them without sampling again.
    """
    rows, kept = [], {}
    for seed, model in models.items():
        det = predict_proba(model, x)
        samples = mc_samples(model, x, n_samples)
        kept[seed] = {"deterministic": det, "samples": samples}
        rows.append({"seed": seed, "method": "single pass", **scores(det, y, n_bins)})
        rows.append(
            {
                "seed": seed,
                "method": f"MC dropout ({n_samples} passes)",
                **scores(mc_predict(samples)[0], y, n_bins),
            }
        )
    return pd.DataFrame(rows), kept


def peakedness(raw: Mapping[int, Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """Mean confidence and entropy of three kinds of prediction, averaged over the images and
    the seeds of ``raw`` (from :func:`compare_mc`): the single deterministic pass (all units,
    no dropout), one dropout pass (averaged over the passes) and the MC average of the passes."""
    names = ("single pass (dropout off)", "one dropout pass", "MC average of the passes")
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in raw.values():
        kinds = (r["deterministic"][None], r["samples"], mc_predict(r["samples"])[0][None])
        for name, probs in zip(names, kinds):  # probs: (passes, images, classes)
            found[name].append(
                (probs.max(axis=-1).mean(), np.mean([entropy(p).mean() for p in probs]))
            )
    return pd.DataFrame(
        [
            {
                "prediction": name,
                "confidence": np.mean([c for c, _ in v]),
                "entropy": np.mean([e for _, e in v]),
            }
            for name, v in found.items()
        ]
    ).set_index("prediction")


def reliability_figure(curves: dict[str, pd.DataFrame], *, title: str | None = None):
    """Reliability diagram: accuracy vs confidence per bin for each named prediction set."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, (ax, axh) = plt.subplots(1, 2, figsize=(8.0, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    for name, t in curves.items():
        used = t[t["count"] > 0]
        ax.plot(used["confidence"], used["accuracy"], marker="o", ms=4, label=name)
        axh.bar(
            (t["low"] + t["high"]) / 2,
            t["count"] / t["count"].sum() * 100,
            width=(t["high"] - t["low"]) * 0.9,
            alpha=0.5,
            label=name,
        )
    ax.set_xlabel("confidence (top class probability)")
    ax.set_ylabel("accuracy in the bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    axh.set_xlabel("confidence (top class probability)")
    axh.set_ylabel("share of test images (%)")
    axh.legend(loc="upper left")
    return plots.finish(fig, title)


def uncertain_images_figure(
    x: np.ndarray,
    y: np.ndarray,
    samples: np.ndarray,
    class_names: Sequence[str],
    n: int = 8,
    *,
    title: str | None = None,
):
    """The ``n`` test images with the highest MC predictive entropy, each with its mean class
    probabilities and their ±1 std spread over the stochastic passes."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    mean, std = mc_predict(samples)
    order = np.argsort(-entropy(mean), kind="stable")[:n]
    fig, axes = plt.subplots(
        2, n, figsize=(1.25 * n, 3.9), gridspec_kw={"height_ratios": [1, 1.25]}
    )
    for j, i in enumerate(order):
        axes[0, j].imshow(x[i].reshape(28, 28) if x[i].size == 784 else x[i], cmap="binary")
        axes[0, j].axis("off")
        axes[0, j].set_title(f"true: {class_names[int(y[i])]}", fontsize=7)
        bar = axes[1, j]
        bar.barh(
            np.arange(len(class_names)),
            mean[i],
            xerr=std[i],
            color="C0",
            error_kw={"lw": 0.8, "capsize": 1.5},
        )
        bar.set_xlim(0, 1)
        bar.invert_yaxis()
        bar.set_yticks(np.arange(len(class_names)), class_names if j == 0 else [], fontsize=6)
        bar.tick_params(axis="x", labelsize=6)
        bar.set_xlabel("probability", fontsize=6)
    return plots.finish(fig, title)
