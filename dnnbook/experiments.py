"""Multi-seed experiments as tidy DataFrames: one row per (config, seed, epoch).

Every table and plot in the book is a view of the frame :func:`run` returns.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Mapping, MutableMapping

import keras
import numpy as np
import pandas as pd

from dnnbook.data import Splits
from dnnbook.runtime import seed_everything
from dnnbook.stats import mean_ci, paired_diff

ModelFactory = Callable[[], keras.Model]
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch in ``self.times`` (seconds)."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.times: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter() - self._start)


def say(message: str) -> None:
    """One progress line on stderr (kept out of the rendered book, shown live by the CLI)."""
    print(message, file=sys.stderr, flush=True)


def train(make_model: ModelFactory, data: Splits, *, seed: int, epochs: int, batch_size: int = 32,
          callbacks: Iterable[keras.callbacks.Callback] = (), evaluate_test: bool = True,
          fit_kwargs: Mapping[str, Any] | None = None) -> tuple[pd.DataFrame, keras.Model]:
    """Seed, build (``make_model`` returns a compiled model), fit and evaluate one run.

    Returns the per-epoch history frame (columns ``seed, epoch, loss, accuracy, val_loss,
    val_accuracy, epoch_time`` and ``test_loss, test_accuracy`` when asked) and the model.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    seed_everything(seed)
    model = make_model()
    timer = EpochTimer()
    hist = model.fit(data.x_train, data.y_train, validation_data=(data.x_valid, data.y_valid),
                     epochs=epochs, batch_size=batch_size, verbose=0,
                     callbacks=[timer, *callbacks], **dict(fit_kwargs or {}))
    frame = pd.DataFrame(hist.history)
    n = len(frame)  # early stopping may end before ``epochs``
    frame.insert(0, "epoch", np.arange(1, n + 1))
    frame.insert(0, "seed", int(seed))
    frame["epoch_time"] = timer.times[:n]
    if evaluate_test:
        test_loss, test_acc = model.evaluate(data.x_test, data.y_test, verbose=0,
                                             batch_size=max(batch_size, 256))[:2]
        frame["test_loss"], frame["test_accuracy"] = float(test_loss), float(test_acc)
    return frame, model


def run(configs: Mapping[str, ModelFactory], data: Splits, seeds: Iterable[int], *, epochs: int,
        batch_size: int = 32, callbacks: Callable[[], list] | None = None,
        evaluate_test: bool = True, models: MutableMapping | None = None,
        fit_kwargs: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Train every config for every seed; return the tidy history of all runs.

    ``configs`` maps a name to a factory returning a fresh compiled model; ``callbacks`` is a
    factory of fresh callbacks per run. Pass a dict as ``models`` to keep the trained models,
    keyed by ``(config, seed)``. One progress line per run goes to stderr.
    """
    seeds = [int(s) for s in seeds]
    if not configs or not seeds:
        raise ValueError("run needs at least one config and one seed")
    frames, total, k = [], len(configs) * len(seeds), 0
    for name, make_model in configs.items():
        for seed in seeds:
            k += 1
            start = time.perf_counter()
            frame, model = train(make_model, data, seed=seed, epochs=epochs, batch_size=batch_size,
                                 callbacks=callbacks() if callbacks else (),
                                 evaluate_test=evaluate_test, fit_kwargs=fit_kwargs)
            frame.insert(0, "config", name)
            frames.append(frame)
            if models is not None:
                models[(name, seed)] = model
            last = frame.iloc[-1]
            say(f"[{k}/{total}] {name} seed {seed}: val_accuracy {last['val_accuracy']:.4f} "
                f"({time.perf_counter() - start:.1f} s)")
    df = pd.concat(frames, ignore_index=True)
    df["config"] = pd.Categorical(df["config"], categories=list(configs), ordered=True)
    return df


def final(df: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every (config, seed) run."""
    idx = df.groupby(["config", "seed"], observed=True)["epoch"].idxmax()
    return df.loc[idx].reset_index(drop=True)


def summarize(df: pd.DataFrame, metric: str = "val_accuracy", *, best: bool = False,
              level: float = 0.95) -> pd.DataFrame:
    """Per config: mean, std, CI and n of ``metric`` at the last epoch (or its best, ``best=True``)."""
    if metric not in df.columns:
        raise KeyError(f"no column {metric!r}; columns: {', '.join(df.columns)}")
    if best:
        agg = "min" if "loss" in metric else "max"
        per_run = df.groupby(["config", "seed"], observed=True)[metric].agg(agg).reset_index()
    else:
        per_run = final(df)
    rows = []
    for name, group in per_run.groupby("config", observed=True, sort=False):
        ci = mean_ci(group[metric].to_numpy(), level)
        rows.append({"config": name, "mean": ci.mean, "std": ci.std, "ci_low": ci.low,
                     "ci_high": ci.high, "n": ci.n})
    return pd.DataFrame(rows).set_index("config")


def per_seed(df: pd.DataFrame, metric: str = "val_accuracy") -> pd.DataFrame:
    """A seed × config table of ``metric`` at the last epoch."""
    return final(df).pivot(index="seed", columns="config", values=metric)


def compare(df: pd.DataFrame, a: str, b: str, metric: str = "val_accuracy", level: float = 0.95):
    """Paired (by seed) CI of ``metric(a) - metric(b)`` at the last epoch."""
    table = per_seed(df, metric)
    for name in (a, b):
        if name not in table.columns:
            raise KeyError(f"no config {name!r}; configs: {', '.join(map(str, table.columns))}")
    return paired_diff(table[a].to_numpy(), table[b].to_numpy(), level)


def epochs_to_reach(df: pd.DataFrame, target: float, metric: str = "val_accuracy") -> pd.DataFrame:
    """Per run: the first epoch where ``metric`` reaches ``target`` (NaN if never) and the seconds to it."""
    rows = []
    for (name, seed), g in df.groupby(["config", "seed"], observed=True, sort=False):
        g = g.sort_values("epoch")
        hit = g[g[metric] >= target]
        epoch = int(hit["epoch"].iloc[0]) if len(hit) else np.nan
        secs = float(g.loc[g["epoch"] <= epoch, "epoch_time"].sum()) if len(hit) else np.nan
        rows.append({"config": name, "seed": seed, "epoch": epoch, "seconds": secs})
    return pd.DataFrame(rows)


def format_table(summary: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Round a summary table for display as ``mean ± std [low, high]`` strings."""
    fmt = f"{{:.{digits}f}}"
    out = pd.DataFrame(index=summary.index)
    out["mean ± std"] = [f"{fmt.format(m)} ± {fmt.format(s)}" for m, s in zip(summary["mean"], summary["std"])]
    out["95% CI"] = [f"[{fmt.format(lo)}, {fmt.format(hi)}]" for lo, hi in zip(summary["ci_low"], summary["ci_high"])]
    out["n"] = summary["n"].astype(int)
    return out
