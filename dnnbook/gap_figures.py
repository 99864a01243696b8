"""Figures of what a regularizer does to the fit: the generalization gap per config, the
reported training loss split into data part and penalty, and the training loss with
dropout on and off next to the validation loss."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from dnnbook import plots


def gap_figure(frame: pd.DataFrame, configs: Sequence[str], *, title: str | None = None):
    """Training accuracy (noisy labels, dropout off) and validation accuracy per config and
    seed (``frame``: one row per run), the gap between their means as a grey bar."""
    plots.style()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for i, name in enumerate(configs):
        g = frame[frame["config"] == name]
        train, valid = g["train_accuracy"], g["val_accuracy"]
        ax.vlines(i, valid.mean(), train.mean(), color="grey", lw=6, alpha=0.3)
        first = i == 0
        ax.scatter(
            [i - 0.08] * len(g),
            train,
            color="C0",
            s=18,
            label="training (noisy labels, dropout off)" if first else None,
        )
        ax.scatter(
            [i + 0.08] * len(g),
            valid,
            color="C1",
            s=18,
            marker="s",
            label="validation" if first else None,
        )
    ax.set_xticks(range(len(configs)), configs, rotation=20)
    ax.set_ylabel("accuracy after training")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # room for the legend above the data
    ax.legend(loc="upper center", ncol=2)
    ax.set_title("grey bar: the generalization gap (mean over seeds)", fontsize=9)
    return plots.finish(fig, title)


def loss_split_figure(history: pd.DataFrame, configs: Sequence[str], *, title: str | None = None):
    """Per config, the training loss fit reports per epoch and its ``penalty`` part (a
    column of ``history``), mean over seeds."""
    plots.style()
    fig, axes = plt.subplots(
        1, len(configs), figsize=(3.1 * len(configs), 3.3), sharey=True, squeeze=False
    )
    for ax, name in zip(axes[0], configs):
        g = history[history["config"] == name].groupby("epoch")[["loss", "penalty"]].mean()
        ax.fill_between(g.index, 0, g["penalty"], color="C1", alpha=0.5, label="penalty")
        ax.fill_between(g.index, g["penalty"], g["loss"], color="C0", alpha=0.4, label="data part")
        ax.plot(g.index, g["loss"], color="C0", label="reported training loss")
        ax.set_title(name)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("training loss (nats)")
    axes[0][-1].legend(loc="upper right")
    return plots.finish(fig, title)


DROPOUT_LOSSES = {
    "fit_loss": "training, as fit reports it",
    "train_loss_dropout_on": "training, dropout on",
    "train_loss": "training, dropout off",
    "val_loss": "validation",
}


def dropout_losses_figure(frame: pd.DataFrame, configs: Sequence[str], *, title: str | None = None):
    """Grouped bars per config (mean over seeds, dots: seeds) of the columns of
    :data:`DROPOUT_LOSSES` in ``frame`` (one row per run)."""
    plots.style()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / len(DROPOUT_LOSSES)
    for j, (col, name) in enumerate(DROPOUT_LOSSES.items()):
        for i, config in enumerate(configs):
            v = frame.loc[frame["config"] == config, col].to_numpy()
            x = i + (j - (len(DROPOUT_LOSSES) - 1) / 2) * width
            label = name if i == 0 else None
            ax.bar(x, v.mean(), width=width * 0.95, color=f"C{j}", alpha=0.6, label=label)
            ax.scatter([x] * len(v), v, color=f"C{j}", s=8, zorder=3)
    ax.set_xticks(range(len(configs)), configs)
    ax.set_ylabel("cross-entropy loss (nats)")
    ax.legend(loc="upper left", ncol=2)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.25)
    return plots.finish(fig, title, ax)
