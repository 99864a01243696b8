"""Multi-seed experiments as tidy DataFrames, one row per (config, seed, epoch): every table
and plot in the book is a view of the frame :func:`run` returns."""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from typing import Callable, Iterable, Iterator, Mapping, MutableMapping, NamedTuple

import keras
import numpy as np
import pandas as pd

from dnnbook.data import Splits
from dnnbook.engine import backend, stackable
from dnnbook.engine import lockstep as engine
from dnnbook.engine.callbacks import EpochLogs, EpochTimer, lockstep_safe
from dnnbook.engine.callbacks import fit as fit_run
from dnnbook.runtime import seed_everything
from dnnbook.stats import mean_ci, paired_diff

ModelFactory = Callable[[], keras.Model]
EpochLogFns = Mapping[str, Callable[[keras.Model], float]]
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def say(message: str) -> None:
    """One progress line on stderr (kept out of the rendered book, shown live by the CLI)."""
    print(message, file=sys.stderr, flush=True)


def _finish(
    frame: pd.DataFrame,
    model: keras.Model,
    data: Splits,
    seed: int,
    batch_size: int,
    evaluate_test: bool,
    lockstep: int,
) -> pd.DataFrame:
    """Add seed/epoch columns (and test metrics) to one run's history, in a fixed column order."""
    n = len(frame)  # early stopping may end before ``epochs``
    first = [c for c in METRICS if c in frame.columns]
    scores = {c: frame.pop(c).iloc[0] for c in ("test_loss", "test_accuracy") if c in frame.columns}
    frame = frame[
        first + [c for c in frame.columns if c not in first and c != "epoch_time"] + ["epoch_time"]
    ]
    frame.insert(0, "epoch", np.arange(1, n + 1))
    frame.insert(0, "seed", int(seed))
    frame["lockstep"] = lockstep
    if evaluate_test:
        if not scores:  # lockstep evaluates all replicas in one call and passes their scores in
            test_loss, test_acc = model.evaluate(
                data.x_test, data.y_test, verbose=0, batch_size=max(batch_size, 256)
            )[:2]
            scores = {"test_loss": test_loss, "test_accuracy": test_acc}
        frame["test_loss"], frame["test_accuracy"] = (
            float(scores["test_loss"]),
            float(scores["test_accuracy"]),
        )
    return frame


def train(
    make_model: ModelFactory,
    data: Splits,
    *,
    seed: int,
    epochs: int,
    batch_size: int = 32,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    evaluate_test: bool = True,
    order_seed: int | None = None,
    epoch_logs: EpochLogFns | None = None,
) -> tuple[pd.DataFrame, keras.Model]:
    """Seed, build (``make_model`` returns a compiled model), fit and evaluate one run.

    ``seed`` sets the initial weights (and dropout masks); ``order_seed`` (default ``seed``)
    the order of the batches. Returns the per-epoch history frame (columns ``seed, epoch,
    loss, accuracy, val_loss, val_accuracy, epoch_time, lockstep`` and ``test_loss,
    test_accuracy`` when asked, plus one per ``epoch_logs`` entry, a function of the model
    measured at the end of every epoch) and the model.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    seed_everything(seed)
    model = make_model()
    timer = EpochTimer()
    callbacks = list(callbacks)
    if all(lockstep_safe(c) or isinstance(c, keras.callbacks.ReduceLROnPlateau) for c in callbacks):
        backend.looped(model)  # no callback between two steps: several per call, with JAX on a GPU
    hist = fit_run(
        model,
        data,
        epochs=epochs,
        batch_size=batch_size,
        order_seed=seed if order_seed is None else order_seed,
        callbacks=callbacks,
        hooks=[timer, *([EpochLogs(epoch_logs)] if epoch_logs else []), *callbacks],
    )
    frame = pd.DataFrame(hist)
    frame["epoch_time"] = timer.times[: len(frame)]
    return _finish(frame, model, data, seed, batch_size, evaluate_test, 1), model


def _replicas(
    make_model: ModelFactory, seeds: list[int], callbacks: list
) -> tuple[list, str | None]:
    """The models of ``seeds`` built for lockstep, or ``[]`` and why they cannot train in it."""
    seed_everything(seeds[0])
    first = make_model()
    reason = stackable.problem(first, callbacks)
    if reason:
        return [], reason
    replicas = [first]
    for seed in seeds[1:]:
        seed_everything(seed)
        replicas.append(make_model())
    return replicas, None


def _served(callbacks: Iterable[keras.callbacks.Callback], runs: list[tuple[str, int]]) -> None:
    """Tell the callbacks that ask (a ``runs`` attribute) which ``(config, seed)`` runs they
    served, in replica order."""
    for c in callbacks:
        if hasattr(c, "runs"):
            c.runs = list(runs)


def run(
    configs: Mapping[str, ModelFactory],
    data: Splits,
    seeds: Iterable[int],
    *,
    epochs: int,
    batch_size: int = 32,
    callbacks: Callable[[], list] | Mapping[str, Callable[[], list]] | None = None,
    models: MutableMapping | None = None,
    epoch_logs: EpochLogFns | None = None,
) -> pd.DataFrame:
    """Train every config (a name → a factory of a fresh compiled model) for every seed;
    return the tidy history of all runs. Seeds set the initial weights; every run shares the
    first seed's batch order. A config's seeds train in lockstep (one stacked model,
    :mod:`dnnbook.engine.lockstep`) where the model allows, else (or inside
    :func:`seed_after_seed`) seed after seed, the reason printed. ``callbacks``: a factory of
    fresh callbacks (or one per config name), called once per lockstep group, else once per
    seed; a callback with a ``runs`` attribute is told the ``(config, seed)`` runs it served.
    ``epoch_logs``: column name → a function of the model measured after every epoch.
    ``models``: a dict that keeps the trained models by ``(config, seed)``.
    """
    seeds = [int(s) for s in seeds]
    if not configs or not seeds:
        raise ValueError("run needs at least one config and one seed")
    if isinstance(callbacks, Mapping) and set(callbacks) - set(configs):
        raise KeyError(
            f"callbacks for unknown configs {', '.join(sorted(set(callbacks) - set(configs)))}; "
            f"configs: {', '.join(configs)}"
        )
    factories = {
        name: callbacks.get(name) if isinstance(callbacks, Mapping) else callbacks
        for name in configs
    }
    plans = {  # name -> its first callbacks and replicas (empty: seed after seed, and why)
        name: _plan(configs[name], factories[name], seeds, not _SOLO.get()) for name in configs
    }
    fit = dict(epochs=epochs, batch_size=batch_size, evaluate_test=True, epoch_logs=epoch_logs)
    progress = _Progress(len(configs) * len(seeds))
    done: dict[str, list] = {}
    for names in _groups(plans).values():
        if plans[names[0]].replicas:
            done |= _in_lockstep(names, plans, data, seeds, progress, **fit)
        else:
            name = names[0]
            done[name] = _seed_after_seed(
                name, configs[name], factories[name], plans[name], data, seeds, progress, **fit
            )
    frames = []
    for name in configs:
        for seed, frame, model in done[name]:
            frame.insert(0, "config", name)
            frames.append(frame)
            if models is not None:
                models[(name, seed)] = model
    return concat(frames, order=configs)


_SOLO = contextvars.ContextVar("seed_after_seed", default=False)


@contextlib.contextmanager
def seed_after_seed() -> Iterator[None]:
    """Inside this context :func:`run` trains every run on its own, seed after seed, never in
    lockstep (to compare the two, or to time the plain way)."""
    token = _SOLO.set(True)
    try:
        yield
    finally:
        _SOLO.reset(token)


class _Plan(NamedTuple):
    callbacks: list  # made for the first (or only) fit
    replicas: list  # the models of every seed, for lockstep; empty: seed after seed
    reason: str | None  # why not in lockstep


def _plan(make_model: ModelFactory, callbacks: Callable | None, seeds: list[int], allowed: bool):
    """How one config trains: its seeds' replicas for lockstep, or none and why."""
    made = list(callbacks()) if callbacks else []
    if not allowed or len(seeds) < 2:
        return _Plan(made, [], None)
    return _Plan(made, *_replicas(make_model, seeds, made))


def _groups(plans: Mapping[str, _Plan]) -> dict:
    """Configs that train as one model: those in lockstep without callbacks and with one
    :func:`dnnbook.engine.stackable.signature`; every other config on its own."""
    groups: dict = {}
    for name, plan in plans.items():
        key = (
            stackable.signature(plan.replicas[0]) if plan.replicas and not plan.callbacks else name
        )
        groups.setdefault(key, []).append(name)
    return groups


class _Progress:
    """Progress lines on stderr: ``[k/total] what: val_accuracy ... (seconds)``."""

    def __init__(self, total: int) -> None:
        self.total, self.k = total, 0

    def say(self, runs: int, what: str, frames: Iterable[pd.DataFrame], start: float) -> None:
        self.k += runs
        accs = ", ".join(f"{f['val_accuracy'].iloc[-1]:.4f}" for f in frames)
        say(
            f"[{self.k}/{self.total}] {what}: val_accuracy {accs} ({time.perf_counter() - start:.1f} s)"
        )


def _in_lockstep(names, plans, data, seeds, progress, **fit) -> dict[str, list]:
    """Train the seeds of ``names`` (one config, or several of one signature) as one stacked
    model; per config, a list of ``(seed, frame, model)``."""
    start = time.perf_counter()
    made = plans[names[0]].callbacks  # a group with callbacks is one config
    models_ = [m for name in names for m in plans[name].replicas]
    histories = engine.fit(models_, data, order_seed=seeds[0], callbacks=made, **fit)
    _served(made, [(names[0], seed) for seed in seeds])
    others = f", {len(names)} configs together" if len(names) > 1 else ""
    done = {}
    for j, name in enumerate(names):
        done[name] = [
            (
                seed,
                _finish(h, m, data, seed, fit["batch_size"], fit["evaluate_test"], len(models_)),
                m,
            )
            for seed, h, m in zip(seeds, histories[j * len(seeds) :], plans[name].replicas)
        ]
        frames = [f for _, f, _ in done[name]]
        progress.say(len(seeds), f"{name}, {len(seeds)} seeds in lockstep{others}", frames, start)
    return done


def _seed_after_seed(name, make_model, callbacks, plan, data, seeds, progress, **fit) -> list:
    """Train one config's seeds one after another; a list of ``(seed, frame, model)``."""
    if plan.reason:
        say(f"{name}: seed after seed ({plan.reason})")
    done = []
    for i, seed in enumerate(seeds):
        start = time.perf_counter()
        fresh = plan.callbacks if i == 0 else (list(callbacks()) if callbacks else [])
        frame, model = train(
            make_model, data, seed=seed, callbacks=fresh, order_seed=seeds[0], **fit
        )
        _served(fresh, [(name, seed)])
        done.append((seed, frame, model))
        progress.say(1, f"{name} seed {seed}", [frame], start)
    return done


def final(df: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every (config, seed) run."""
    idx = df.groupby(["config", "seed"], observed=True)["epoch"].idxmax()
    return df.loc[idx].reset_index(drop=True)


def summarize(
    df: pd.DataFrame, metric: str = "val_accuracy", *, best: bool = False, level: float = 0.95
) -> pd.DataFrame:
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
        rows.append(
            {
                "config": name,
                "mean": ci.mean,
                "std": ci.std,
                "ci_low": ci.low,
                "ci_high": ci.high,
                "n": ci.n,
            }
        )
    return pd.DataFrame(rows).set_index("config")


def per_seed(df: pd.DataFrame, metric: str = "val_accuracy") -> pd.DataFrame:
    """A seed × config table of ``metric`` at the last epoch."""
    return final(df).pivot(index="seed", columns="config", values=metric)


def per_run(df: pd.DataFrame, metric: str = "val_accuracy") -> pd.DataFrame:
    """Per ``(config, seed)`` run: the ``best`` value of ``metric`` (the lowest of a loss; NaN
    epochs skipped), the ``best epoch`` and the ``last`` value (at the last epoch). A categorical
    ``config`` column keeps its order (in the index, and so in ``unstack``)."""
    if metric not in df.columns:
        raise KeyError(f"no column {metric!r}; columns: {', '.join(df.columns)}")
    rows = []
    for (name, seed), g in df.sort_values("epoch", kind="stable").groupby(
        ["config", "seed"], observed=True
    ):
        values = g[metric].to_numpy(dtype=float)
        found = not np.isnan(values).all()
        i = int((np.nanargmin if "loss" in metric else np.nanargmax)(values)) if found else None
        rows.append(
            {
                "config": name,
                "seed": seed,
                "best": values[i] if found else np.nan,
                "best epoch": g["epoch"].iloc[i] if found else np.nan,
                "last": values[-1],
            }
        )
    out = pd.DataFrame(rows).astype({"config": df["config"].dtype})  # a categorical keeps its order
    return out.set_index(["config", "seed"])


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
    out["mean ± std"] = [
        f"{fmt.format(m)} ± {fmt.format(s)}" for m, s in zip(summary["mean"], summary["std"])
    ]
    out["95% CI"] = [
        f"[{fmt.format(lo)}, {fmt.format(hi)}]"
        for lo, hi in zip(summary["ci_low"], summary["ci_high"])
    ]
    out["n"] = summary["n"].astype(int)
    return out


def concat(frames: Iterable[pd.DataFrame], order: Iterable[str] | None = None) -> pd.DataFrame:
    """Stack tidy frames into one whose ``config`` column is an ordered categorical: in
    ``order`` if given, else in the order the configs first appear, so that tables and plots
    list the configurations as the experiment does."""
    df = pd.concat(list(frames), ignore_index=True)
    names = list(order) if order is not None else list(dict.fromkeys(df["config"]))
    df["config"] = pd.Categorical(df["config"].astype(str), categories=names, ordered=True)
    return df
