"""Predictive uncertainty: MC dropout, negative log-likelihood, calibration (ECE, reliability).

MC dropout keeps dropout on at prediction time and averages ``n_samples`` stochastic
forward passes; the spread of those passes is a cheap estimate of the model's uncertainty.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import pandas as pd

EPS = 1e-12


def predict_proba(model: keras.Model, x: np.ndarray, *, training: bool = False,
                  batch_size: int = 1000) -> np.ndarray:
    """Class probabilities of one forward pass, ``(n, classes)``; ``training=True`` keeps dropout on."""
    parts = [keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=training))
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float64)


def mc_samples(model: keras.Model, x: np.ndarray, n_samples: int = 30, *,
               batch_size: int = 1000) -> np.ndarray:
    """``n_samples`` stochastic passes with dropout on: probabilities of shape ``(n_samples, n, classes)``."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    return np.stack([predict_proba(model, x, training=True, batch_size=batch_size)
                     for _ in range(n_samples)])


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
        rows.append({"low": edges[k], "high": edges[k + 1], "count": int(m.sum()),
                     "confidence": float(conf[m].mean()) if m.any() else np.nan,
                     "accuracy": float(correct[m].mean()) if m.any() else np.nan})
    return pd.DataFrame(rows)


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean |accuracy − confidence| over bins."""
    table = reliability(probs, labels, n_bins)
    used = table[table["count"] > 0]
    return float((used["count"] * (used["accuracy"] - used["confidence"]).abs()).sum() / table["count"].sum())


def entropy(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy (nats) of each row of ``probs``."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def scores(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Accuracy, NLL and ECE of one set of predictions."""
    return {"accuracy": accuracy(probs, labels), "nll": nll(probs, labels), "ece": ece(probs, labels, n_bins)}


def compare_mc(models: dict, x: np.ndarray, y: np.ndarray, *, n_samples: int = 30,
               n_bins: int = 10) -> tuple[pd.DataFrame, dict]:
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
        rows.append({"seed": seed, "method": f"MC dropout ({n_samples} passes)",
                     **scores(mc_predict(samples)[0], y, n_bins)})
    return pd.DataFrame(rows), kept


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
        axh.bar((t["low"] + t["high"]) / 2, t["count"] / t["count"].sum() * 100,
                width=(t["high"] - t["low"]) * 0.9, alpha=0.5, label=name)
    ax.set_xlabel("confidence (top class probability)")
    ax.set_ylabel("accuracy in the bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    axh.set_xlabel("confidence (top class probability)")
    axh.set_ylabel("share of test images (%)")
    axh.legend(loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def uncertain_images_figure(x: np.ndarray, y: np.ndarray, samples: np.ndarray,
                            class_names: Sequence[str], n: int = 8, *, title: str | None = None):
    """The ``n`` test images with the highest MC predictive entropy, each with its mean class
    probabilities and their ±1 std spread over the stochastic passes."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    mean, std = mc_predict(samples)
    order = np.argsort(-entropy(mean), kind="stable")[:n]
    fig, axes = plt.subplots(2, n, figsize=(1.25 * n, 3.9), gridspec_kw={"height_ratios": [1, 1.25]})
    for j, i in enumerate(order):
        axes[0, j].imshow(x[i].reshape(28, 28) if x[i].size == 784 else x[i], cmap="binary")
        axes[0, j].axis("off")
        axes[0, j].set_title(f"true: {class_names[int(y[i])]}", fontsize=7)
        bar = axes[1, j]
        bar.barh(np.arange(len(class_names)), mean[i], xerr=std[i], color="C0",
                 error_kw={"lw": 0.8, "capsize": 1.5})
        bar.set_xlim(0, 1)
        bar.invert_yaxis()
        bar.set_yticks(np.arange(len(class_names)), class_names if j == 0 else [], fontsize=6)
        bar.tick_params(axis="x", labelsize=6)
        bar.set_xlabel("probability", fontsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
