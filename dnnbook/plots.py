"""One plotting style for the whole book: learning curves with bands, grids, CI bars."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

STYLE = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "legend.framealpha": 0.8,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "lines.linewidth": 1.6,
}
LABELS = {
    "loss": "training loss",
    "accuracy": "training accuracy",
    "val_loss": "validation loss",
    "val_accuracy": "validation accuracy",
    "test_accuracy": "test accuracy",
    "epoch_time": "seconds per epoch",
}


def style() -> None:
    """Apply the book's matplotlib style."""
    plt.rcParams.update(STYLE)


def finish(fig, title: str | None, ax=None):
    """Give the figure its ``title`` (as ``ax``'s title, or above all its axes), lay it out,
    return it: the last step of every figure function."""
    if title:
        (fig.suptitle if ax is None else ax.set_title)(title)
    fig.tight_layout()
    return fig


def label(metric: str) -> str:
    """The axis label for a metric column."""
    return LABELS.get(metric, metric.replace("_", " "))


def learning_curves(
    df: pd.DataFrame,
    metrics: Sequence[str] = ("val_accuracy",),
    *,
    band: str = "std",
    logy: bool = False,
    title: str | None = None,
):
    """Mean over seeds per config and epoch, with a band (``std`` or ``minmax``) over seeds.

    One panel per metric, one legend below the panels; ``logy`` puts the loss panels on a
    log scale. Returns the figure.
    """
    if band not in ("std", "minmax"):
        raise ValueError(f"unknown band {band!r}; choose one of: std, minmax")
    style()
    n_configs = df["config"].nunique()
    width = STYLE["figure.figsize"][0] if len(metrics) == 1 else min(4.2 * len(metrics), 10.0)
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, g in df.groupby("config", observed=True, sort=False):
            stats = g.groupby("epoch")[metric].agg(["mean", "std", "min", "max", "count"])
            x = stats.index.to_numpy()
            (line,) = ax.plot(
                x, stats["mean"], label=f"{name}", marker="o" if len(x) < 12 else None, ms=3
            )
            if band == "std":
                lo, hi = (
                    stats["mean"] - stats["std"].fillna(0),
                    stats["mean"] + stats["std"].fillna(0),
                )
            else:
                lo, hi = stats["min"], stats["max"]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label(metric))
        if logy and "loss" in metric:
            ax.set_yscale("log")
    n = int(df.groupby(["config"], observed=True)["seed"].nunique().min())
    handles, labels = axes[0][0].get_legend_handles_labels()
    spread = "±1 std" if band == "std" else "min–max"
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(n_configs, 4),
        frameon=False,
        title=f"mean over {n} seeds, band {spread}",
        bbox_to_anchor=(0.5, 0.0),
    )
    if title:
        fig.suptitle(title)
    rows = -(-n_configs // 4)
    fig.tight_layout(rect=(0, 0.08 + 0.07 * rows, 1, 1))
    return fig


def image_grid(
    images: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    *,
    n_cols: int = 10,
    n_rows: int = 3,
    title: str | None = None,
):
    """A grid of images with their class names; returns the figure."""
    style()
    n = min(len(images), n_cols * n_rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * 0.85, n_rows * 1.05))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="binary")
            ax.set_title(class_names[int(labels[i])], fontsize=7)
    return finish(fig, title)


def ci_bars(
    summary: pd.DataFrame,
    *,
    xlabel: str = "validation accuracy",
    title: str | None = None,
    reference: float | None = None,
):
    """Horizontal mean bars with 95% CI whiskers, one per config of a summary table."""
    style()
    fig, ax = plt.subplots(figsize=(STYLE["figure.figsize"][0], 0.45 * len(summary) + 1.2))
    y = np.arange(len(summary))[::-1]
    err = np.vstack([summary["mean"] - summary["ci_low"], summary["ci_high"] - summary["mean"]])
    ax.errorbar(summary["mean"], y, xerr=np.nan_to_num(err), fmt="o", capsize=4)
    ax.set_yticks(y, [str(i) for i in summary.index])
    ax.set_xlabel(xlabel)
    if reference is not None:
        ax.axvline(reference, color="grey", ls="--", lw=1)
    return finish(fig, title, ax)


def class_balance(labels: np.ndarray, class_names: Sequence[str], *, title: str | None = None):
    """Bar chart of the share of each class in ``labels``; returns the figure."""
    style()
    counts = np.bincount(np.asarray(labels), minlength=len(class_names))
    fig, ax = plt.subplots(figsize=(STYLE["figure.figsize"][0], 3.0))
    ax.bar(range(len(class_names)), counts / counts.sum() * 100)
    ax.axhline(100 / len(class_names), color="grey", ls="--", lw=1, label="perfect balance")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    ax.set_ylabel("share of images (%)")
    ax.legend(loc="lower right")
    return finish(fig, title, ax)
