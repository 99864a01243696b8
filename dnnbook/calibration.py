"""How good predicted probabilities are: NLL, accuracy, calibration (ECE, reliability bins),
entropy, and the two figures of chapter 4's MC-dropout section."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

EPS = 1e-12  # the smallest probability a log is taken of


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (cross-entropy, nats) of integer ``labels`` under ``probs``."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=int)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], EPS, 1.0))))


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose most probable class is the label."""
    return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per equal-width bin of confidence (the top probability): its count, mean confidence
    and accuracy. Bin ``k`` holds ``(k/n, (k+1)/n]`` (the first also 0); empty bins: NaN."""
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
    """Expected calibration error: the count-weighted mean |accuracy − confidence| of the bins."""
    t = reliability(probs, labels, n_bins)
    used = t[t["count"] > 0]
    gaps = (used["accuracy"] - used["confidence"]).abs()
    return float((used["count"] * gaps).sum() / t["count"].sum())


def entropy(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy (nats) of each row of ``probs``."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def scores(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Accuracy, NLL, ECE and mean confidence of one set of predictions."""
    return {
        "accuracy": accuracy(probs, labels),
        "nll": nll(probs, labels),
        "ece": ece(probs, labels, n_bins),
        "confidence": float(np.asarray(probs).max(axis=1).mean()),
    }


def reliability_figure(curves: Mapping[str, pd.DataFrame], *, title: str | None = None):
    """Reliability diagram (accuracy against confidence per bin) of each named set of
    predictions (tables from :func:`reliability`), and the share of images per bin."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, (ax, axh) = plt.subplots(1, 2, figsize=(8.0, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    for name, t in curves.items():
        used = t[t["count"] > 0]
        ax.plot(used["confidence"], used["accuracy"], marker="o", ms=4, label=name)
        centers, widths = (t["low"] + t["high"]) / 2, (t["high"] - t["low"]) * 0.9
        share = t["count"] / t["count"].sum() * 100
        axh.bar(centers, share, width=widths, alpha=0.5, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy in the bin")
    axh.set_ylabel("share of test images (%)")
    for a in (ax, axh):
        a.set_xlabel("confidence (top class probability)")
        a.legend(loc="upper left")
    return plots.finish(fig, title)


def uncertain_images_figure(
    x: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    class_names: Sequence[str],
    n: int = 8,
    *,
    title: str | None = None,
):
    """The ``n`` images whose mean prediction ``mean`` has the highest entropy, each with its
    class probabilities and, as error bars, their standard deviation ``std`` over the passes."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    order = np.argsort(-entropy(mean), kind="stable")[:n]
    fig, axes = plt.subplots(
        2, n, figsize=(1.25 * n, 3.9), gridspec_kw={"height_ratios": [1, 1.25]}
    )
    ticks = np.arange(len(class_names))
    for j, i in enumerate(order):
        axes[0, j].imshow(x[i].reshape(28, 28) if x[i].size == 784 else x[i], cmap="binary")
        axes[0, j].axis("off")
        axes[0, j].set_title(f"true: {class_names[int(y[i])]}", fontsize=7)
        bar = axes[1, j]
        bar.barh(ticks, mean[i], xerr=std[i], color="C0", error_kw={"lw": 0.8, "capsize": 1.5})
        bar.set_xlim(0, 1)
        bar.invert_yaxis()
        bar.set_yticks(ticks, class_names if j == 0 else [], fontsize=6)
        bar.tick_params(axis="x", labelsize=6)
        bar.set_xlabel("probability", fontsize=6)
    return plots.finish(fig, title)
