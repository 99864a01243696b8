"""Chapter 3, faster optimizers: learning rates, schedules and optimizers on 2-D surfaces.

Learning rates: the LR finder, 1cycle, schedule helpers, and the rate actually applied.
Schedules (1cycle included) are ``LearningRateSchedule`` objects evaluated inside the compiled
update; :class:`RateRecorder` records the rate each update applies from inside the update too.
The LR finder is a callback that sets the rate *per batch* (on JAX it calls
:func:`dnnbook.engine.backend.sync` first), so the same code runs on TensorFlow, JAX and PyTorch.

Surfaces: real Keras optimizers on 2-D test functions (trajectories, losses, oscillations).
A surface is a formula in plain arithmetic, so it evaluates NumPy grids (for contour plots)
and backend tensors alike; the optimizers are stepped by ``model.fit`` on a model whose only
weight is the 2-D point and whose loss is the surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
from keras import ops

from dnnbook import experiments, models
from dnnbook.claims import Check
from dnnbook.data import Splits
from dnnbook.engine.backend import sync
from dnnbook.experiments import say

OPTIMIZER_NAMES = ("SGD", "momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam", "Nadam", "AdamW")


def make_optimizer(name: str, learning_rate: Any) -> keras.optimizers.Optimizer:
    """One of :data:`OPTIMIZER_NAMES` at ``learning_rate`` (a float or a schedule), Keras defaults otherwise.

    Momentum and Nesterov use ``momentum=0.9``; RMSProp ``rho=0.9``.
    """
    makers = {
        "SGD": lambda lr: keras.optimizers.SGD(learning_rate=lr),
        "momentum": lambda lr: keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
        "Nesterov": lambda lr: keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True),
        "AdaGrad": lambda lr: keras.optimizers.Adagrad(learning_rate=lr),
        "RMSProp": lambda lr: keras.optimizers.RMSprop(learning_rate=lr, rho=0.9),
        "Adam": lambda lr: keras.optimizers.Adam(learning_rate=lr),
        "Nadam": lambda lr: keras.optimizers.Nadam(learning_rate=lr),
        "AdamW": lambda lr: keras.optimizers.AdamW(learning_rate=lr),
    }
    if name not in makers:
        raise KeyError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZER_NAMES)}")
    return makers[name](learning_rate)


def mlp_with(splits: Splits, name: str, learning_rate: Any) -> keras.Model:
    """The baseline's architecture for ``splits`` (:func:`dnnbook.models.build_mlp`'s defaults,
    as in :func:`dnnbook.models.baseline`), compiled with optimizer ``name`` at
    ``learning_rate`` (:func:`make_optimizer`) instead of the baseline's plain SGD."""
    mlp = models.build_mlp(splits.input_shape, splits.n_classes)
    return models.compile_classifier(mlp, make_optimizer(name, learning_rate))


def set_rate(model: keras.Model, rate: float) -> None:
    """Set the learning rate of ``model``'s optimizer for the next update (any backend)."""
    sync(model)
    model.optimizer.learning_rate = float(rate)


# --- schedule helpers: step -> rate ----------------------------------------------------------
@keras.saving.register_keras_serializable(package="dnnbook")
class PowerDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Power scheduling: ``rate(t) = initial / (1 + t / steps) ** power`` (t counts updates)."""

    def __init__(self, initial: float, steps: float, power: float = 1.0) -> None:
        self.initial, self.steps, self.power = float(initial), float(steps), float(power)

    def __call__(self, step):
        t = ops.cast(step, "float32")
        return self.initial / ops.power(1.0 + t / self.steps, self.power)

    def get_config(self) -> dict:
        return {"initial": self.initial, "steps": self.steps, "power": self.power}


def power(initial: float, steps: float, power: float = 1.0) -> PowerDecay:
    """Power (inverse-time) schedule: halves the rate after ``steps`` updates when ``power=1``."""
    return PowerDecay(initial, steps, power)


def exponential(initial: float, steps: float) -> keras.optimizers.schedules.ExponentialDecay:
    """Exponential schedule ``initial * 0.1 ** (t / steps)``: ten times smaller every ``steps`` updates."""
    return keras.optimizers.schedules.ExponentialDecay(initial, decay_steps=steps, decay_rate=0.1)


def piecewise(
    boundaries: Sequence[int], values: Sequence[float]
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """Piecewise constant: ``values[0]`` for updates ``t <= boundaries[0]``, then ``values[1]``..."""
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            f"need one more value than boundaries, got {len(values)} and {len(boundaries)}"
        )
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(b) for b in boundaries], [float(v) for v in values]
    )


@keras.saving.register_keras_serializable(package="dnnbook")
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """1cycle as a schedule, computed inside the compiled step (no per-batch callback, so steps
    can run several per call): linear from ``max_rate / start_div`` up to ``max_rate`` over the
    first ``peak_at`` of the updates, linear back down over the same number, then linear to
    ``max_rate / end_div`` at the last update. :meth:`rate` is the same in plain Python, written
    independently, the reference the book checks the applied rates against."""

    def __init__(
        self,
        max_rate: float,
        total_steps: int,
        *,
        start_div: float = 10.0,
        end_div: float = 1000.0,
        peak_at: float = 0.45,
    ) -> None:
        if total_steps < 3:
            raise ValueError(f"1cycle needs at least 3 updates, got {total_steps}")
        self.max_rate, self.total_steps = float(max_rate), int(total_steps)
        self.start_div, self.end_div, self.peak_at = (
            float(start_div),
            float(end_div),
            float(peak_at),
        )

    def rate(self, step: int) -> float:
        """The promised rate of update ``step`` (held at the last value past the end), in Python."""
        last = self.total_steps - 1
        step, low = min(step, last), self.max_rate / self.start_div
        up = max(1, int(round(self.peak_at * last)))
        down = min(2 * up, last)
        if step <= up:
            return low + (self.max_rate - low) * step / up
        if step <= down:
            return self.max_rate - (self.max_rate - low) * (step - up) / (down - up)
        return low - (low - self.max_rate / self.end_div) * (step - down) / max(1, last - down)

    def __call__(self, step):
        last = self.total_steps - 1
        low, top, end = self.max_rate / self.start_div, self.max_rate, self.max_rate / self.end_div
        up = max(1, int(round(self.peak_at * last)))
        down = min(2 * up, last)
        t = ops.minimum(ops.cast(step, "float32"), float(last))
        # each piece written from the end it approaches, so float32 keeps small rates accurate
        rising = low + (top - low) * t / up
        falling = low + (top - low) * (down - t) / max(1, down - up)
        tail = end + (low - end) * (last - t) / max(1, last - down)
        return ops.where(t <= up, rising, ops.where(t <= down, falling, tail))

    def get_config(self) -> dict:
        return {
            "max_rate": self.max_rate,
            "total_steps": self.total_steps,
            "start_div": self.start_div,
            "end_div": self.end_div,
            "peak_at": self.peak_at,
        }


class RateRecorder(keras.callbacks.Callback):
    """Records the learning rate every update applies, from inside the update itself.

    :meth:`prepare` hooks the (unbuilt) optimizer before ``fit`` (:func:`dnnbook.experiments.run`
    calls it): each update writes the rate it is applying into an optimizer variable, at the row
    of its iteration, and the recording is read back once, at the end of training. It acts at no
    step boundary, so steps can run several per call, and one recorder may serve all the seeds
    of a lockstep fit (``lockstep_safe``): it records each replica's rate, which differ where a
    ``ReduceLROnPlateau`` runs per replica (:mod:`dnnbook.engine.replica_grads`).
    :func:`dnnbook.experiments.run` tells it which ``(config, seed)`` runs it served, in :attr:`runs`."""

    lockstep_safe = True
    runs: list = []  # the (config, seed) of each replica it recorded, in order

    def prepare(self, optimizer: keras.optimizers.Optimizer, updates: int) -> None:
        """Hook ``optimizer`` (not yet built) to record the rates of up to ``updates`` updates."""
        from dnnbook.engine.replica_grads import with_hooks

        if optimizer.built:
            raise ValueError("prepare the rate recorder before the optimizer is built (before fit)")
        optimizer = with_hooks(optimizer)  # its public update method runs hooks first
        width = optimizer.replicas
        self._log = optimizer.add_variable(
            (int(updates) + 1, width), dtype="float32", name="applied_rates"
        )
        self._optimizer = optimizer

        def record(opt) -> None:
            row = ops.minimum(
                ops.cast(opt.iterations, "int32"), int(updates)
            )  # the last row: overflow
            rates = ops.reshape(opt.applied_rates(), (1, width))
            self._log.assign(ops.slice_update(ops.convert_to_tensor(self._log), (row, 0), rates))

        optimizer.hooks = (*optimizer.hooks, record)

    def on_train_begin(self, logs: dict | None = None) -> None:
        if getattr(self, "_log", None) is None:
            raise ValueError("RateRecorder.prepare(optimizer, updates) must be called before fit")
        self.rates: list = []
        self.epochs: list[int] = []

    def on_train_end(self, logs: dict | None = None) -> None:
        sync(self.model)
        n = int(ops.convert_to_numpy(self._optimizer.iterations))
        log = ops.convert_to_numpy(self._log).astype(float)
        if n >= len(log):
            raise ValueError(
                f"the rate recorder was prepared for {len(log) - 1} updates, but {n} ran"
            )
        per_epoch = self.params["steps"]
        self.rates = [row[0] if len(row) == 1 else row for row in log[:n]]
        self.epochs = [t // per_epoch + 1 for t in range(n)]

    def rates_of(self, replica: int) -> list[float]:
        """The rates replica ``replica`` used."""
        return [float(r[replica]) if np.ndim(r) else float(r) for r in self.rates]


# --- the learning-rate finder ----------------------------------------------------------------
class LRFinder(keras.callbacks.Callback):
    """Raise the rate exponentially from ``start`` to ``end`` over ``steps`` updates; record the loss.

    ``rates[i] = start * (end / start) ** (i / (steps - 1))``. Keras logs the running mean of the
    loss over the epoch; the loss of each batch is recovered from it. Training stops after
    ``steps`` updates or once the loss exceeds ``stop_factor`` × its best value (or is not finite).
    """

    def __init__(
        self, start: float = 1e-5, end: float = 10.0, steps: int = 200, stop_factor: float = 4.0
    ) -> None:
        super().__init__()
        if not 0 < start < end or steps < 2:
            raise ValueError(f"need 0 < start < end and steps >= 2, got {start}, {end}, {steps}")
        self.start, self.end, self.steps, self.stop_factor = (
            float(start),
            float(end),
            int(steps),
            stop_factor,
        )

    def rate(self, i: int) -> float:
        """The promised rate of update ``i``."""
        return self.start * (self.end / self.start) ** (i / (self.steps - 1))

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.rates: list[float] = []
        self.losses: list[float] = []
        self._best, self._prev_mean = math.inf, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._prev_mean = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        set_rate(self.model, self.rate(len(self.rates)))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        mean = float((logs or {}).get("loss", math.nan))
        loss = (batch + 1) * mean - batch * self._prev_mean  # undo Keras' running mean
        self._prev_mean = mean
        self.rates.append(self.rate(len(self.rates)))
        self.losses.append(loss)
        if math.isfinite(loss):
            self._best = min(self._best, loss)
        if (
            len(self.rates) >= self.steps
            or not math.isfinite(loss)
            or loss > self.stop_factor * self._best
        ):
            self.model.stop_training = True


def smooth(values: Sequence[float], beta: float = 0.9) -> np.ndarray:
    """Bias-corrected exponential moving average (the smoothing of the usual LR-finder plot)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * float(v)
        out.append(avg / (1 - beta**i))
    return np.asarray(out)


def suggest(rates: Sequence[float], losses: Sequence[float], divisor: float = 10.0) -> float:
    """The book's rule: the rate where the smoothed loss is lowest, divided by ``divisor``.

    The loss is lowest just before it shoots up; a rate ten times lower is safely on the
    descending part of the curve.
    """
    s = smooth(losses)
    ok = np.isfinite(s)
    if not ok.any():
        raise ValueError("the LR finder recorded no finite loss")
    return float(np.asarray(rates)[ok][np.argmin(s[ok])] / divisor)


def lr_find(
    make_model: Callable[[], keras.Model],
    data: Splits,
    *,
    seed: int,
    steps: int,
    start: float = 1e-5,
    end: float = 10.0,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Run the LR finder once on a fresh model; one row per update: ``step, rate, loss, smoothed``."""
    from dnnbook.runtime import seed_everything

    seed_everything(seed)
    model = make_model()
    finder = LRFinder(start, end, steps)
    epochs = math.ceil(steps / math.ceil(len(data.x_train) / batch_size))
    model.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=[finder],
    )
    frame = pd.DataFrame(
        {"step": np.arange(len(finder.rates)), "rate": finder.rates, "loss": finder.losses}
    )
    frame["smoothed"] = smooth(frame["loss"])
    return frame


def mean_curve(curves: pd.DataFrame) -> pd.DataFrame:
    """Finder runs of one optimizer (a ``seed`` column, the same rate at the same ``step``)
    averaged: the mean loss at every step all of them reached; ``step, rate, loss, smoothed``."""
    last = int(curves.groupby("seed")["step"].max().min())
    kept = curves[curves["step"] <= last]
    frame = kept.groupby("step", sort=True)[["rate", "loss"]].mean().reset_index()
    frame["smoothed"] = smooth(frame["loss"])
    return frame


def find_rates(
    make_model: Callable[[str, float], keras.Model],
    names: Sequence[str],
    data: Splits,
    *,
    seeds: Sequence[int],
    steps: int,
    batch_size: int = 32,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The LR finder for every optimizer in ``names``, run once per seed: all curves (columns
    ``config`` and ``seed``) and each optimizer's rate, :func:`suggest` applied to the seeds'
    :func:`mean_curve` (one run's pick is noisy: it follows the loss of one batch at a time)."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("find_rates needs at least one seed")
    frames, chosen = [], {}
    for name in names:
        runs = pd.concat(
            [
                lr_find(
                    partial(make_model, name, 1e-3),
                    data,
                    seed=s,
                    steps=steps,
                    batch_size=batch_size,
                ).assign(config=name, seed=s)
                for s in seeds
            ],
            ignore_index=True,
        )
        mean = mean_curve(runs)
        chosen[name] = suggest(mean["rate"], mean["loss"])
        frames.append(runs)
        over = f" (the mean curve of {len(seeds)} seeds)" if len(seeds) > 1 else ""
        say(f"LR finder {name}: suggests {chosen[name]:.3g}{over}")
    return pd.concat(frames, ignore_index=True), chosen


# --- schedules compared on the network -------------------------------------------------------
def run_schedules(
    configs: Mapping[str, tuple[Callable[[], keras.Model], Callable[[], list]]],
    data: Splits,
    seeds: Sequence[int],
    *,
    epochs: int,
    batch_size: int = 32,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every ``name -> (model factory, callbacks factory)`` for every seed, reading the rate back.

    Runs go through :func:`dnnbook.experiments.run` (the batch order of the first seed for
    every run): a schedule in the optimizer (1cycle too, :class:`OneCycleSchedule`) and
    :class:`RateRecorder` let the seeds train in lockstep (they share the one optimizer, so one
    recording serves them all), and so does ``ReduceLROnPlateau`` with plain SGD (it runs once
    per replica, on the replica's own validation loss, see
    :mod:`dnnbook.engine.replica_grads`); other callbacks make them go seed after seed.
    Returns the tidy history and the applied rates, one row per ``config, seed, step`` with
    the ``epoch`` of the step.
    """

    seeds = [int(s) for s in seeds]
    recorders: list[RateRecorder] = []

    def with_recorder(make_callbacks: Callable[[], list]) -> Callable[[], list]:
        def make() -> list:
            recorders.append(RateRecorder())
            return [*make_callbacks(), recorders[-1]]

        return make

    df = experiments.run(
        {name: make_model for name, (make_model, _) in configs.items()},
        data,
        seeds,
        epochs=epochs,
        batch_size=batch_size,
        callbacks={name: with_recorder(make) for name, (_, make) in configs.items()},
    )
    rates = {}  # in lockstep one recorder serves all the seeds of a config
    for recorder in recorders:
        for replica, run in enumerate(recorder.runs):
            rates[run] = pd.DataFrame(
                {
                    "config": run[0],
                    "seed": run[1],
                    "step": np.arange(len(recorder.rates)),
                    "epoch": recorder.epochs,
                    "rate": recorder.rates_of(replica),
                }
            )
    return df, pd.concat(
        [rates[(name, seed)] for name in configs for seed in seeds], ignore_index=True
    )


def plateau_replay(
    val_losses: Sequence[float], initial: float, factor: float, patience: int, min_lr: float = 0.0
) -> list[float]:
    """The rate of every epoch that ``ReduceLROnPlateau(monitor='val_loss')`` promises, replayed from the log.

    After an epoch, if ``val_loss`` has not improved on its best for ``patience`` epochs, the rate
    is multiplied by ``factor`` for the next epoch (no cooldown, ``min_delta=1e-4``, Keras' default).
    """
    rates, rate, best, wait = [], float(initial), math.inf, 0
    for v in val_losses:
        rates.append(rate)
        if v < best - 1e-4:
            best, wait = v, 0
        else:
            wait += 1
            if wait >= patience:
                rate, wait = max(rate * factor, min_lr), 0
    return rates


def schedule_suite(
    make_model: Callable[[Any], keras.Model],
    base_rate: float,
    steps_per_epoch: int,
    epochs: int,
    *,
    include_constant: bool = True,
) -> tuple[dict, dict[str, Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]]]:
    """The book's schedules for one optimizer, all from ``base_rate``, over ``epochs`` epochs.

    ``make_model(learning_rate)`` returns a compiled model. Returns the configs for
    :func:`run_schedules` and, per config, ``promise(rates, history)``: the rate each recorded
    update should have used (``rates`` and ``history`` restricted to one run). Leave out the
    constant rate (``include_constant=False``) when runs at ``base_rate`` exist already.

    - constant: ``base_rate`` throughout;
    - power: ``base / (1 + t / steps_per_epoch)``: half after one epoch;
    - exponential: ``base * 0.1 ** (t / total)``: ten times lower at the end;
    - piecewise: ``base`` then ``base / 10`` for the last third of the epochs;
    - performance: ``ReduceLROnPlateau(val_loss, factor=0.5, patience=1)``;
    - 1cycle: peak ``3 × base`` at 45% of the updates, ending at ``3 × base / 1000``.
    """
    total = steps_per_epoch * epochs
    drop_epoch = max(1, math.ceil(2 * epochs / 3))  # first epoch (0-based) at base / 10
    sched = {
        "power": power(base_rate, steps_per_epoch),
        "exponential": exponential(base_rate, total),
        "piecewise": piecewise([drop_epoch * steps_per_epoch - 1], [base_rate, base_rate / 10]),
    }
    peak = 3 * base_rate

    def none() -> list:
        return []

    configs = {"constant": (lambda: make_model(base_rate), none)}
    configs.update({name: (lambda s=s: make_model(s), none) for name, s in sched.items()})
    configs["performance"] = (
        lambda: make_model(base_rate),
        lambda: [keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1)],
    )
    cycle = OneCycleSchedule(peak, total)
    configs["1cycle"] = (lambda: make_model(cycle), none)

    def from_schedule(s):
        return lambda rates, hist: schedule_rates(s, rates["step"].to_numpy())

    def plateau(rates, hist):
        per_epoch = plateau_replay(hist.sort_values("epoch")["val_loss"], base_rate, 0.5, 1)
        return np.asarray([per_epoch[e - 1] for e in rates["epoch"]])

    promises = {"constant": lambda rates, hist: np.full(len(rates), base_rate)}
    promises.update({name: from_schedule(s) for name, s in sched.items()})
    promises["performance"] = plateau
    promises["1cycle"] = lambda rates, hist: np.asarray([cycle.rate(t) for t in rates["step"]])
    if not include_constant:
        del configs["constant"], promises["constant"]
    return configs, promises


def schedule_rates(
    schedule: keras.optimizers.schedules.LearningRateSchedule, steps: np.ndarray
) -> np.ndarray:
    """The rates ``schedule`` promises at ``steps``, in one vectorized call (a schedule is
    elementwise in the step). Keras's ``PiecewiseConstantDecay`` adds in place into a scalar,
    which PyTorch refuses for a vector of steps: there it is called once per distinct step."""
    steps = np.asarray(steps)
    if keras.backend.backend() == "torch" and isinstance(
        schedule, keras.optimizers.schedules.PiecewiseConstantDecay
    ):
        distinct, where = np.unique(steps, return_inverse=True)
        return np.asarray([float(ops.convert_to_numpy(schedule(int(t)))) for t in distinct])[where]
    return np.asarray(ops.convert_to_numpy(schedule(ops.convert_to_tensor(steps))), dtype=float)


def rate_errors(
    rates: pd.DataFrame, history: pd.DataFrame, promises: Mapping[str, Callable]
) -> pd.Series:
    """Per config: the largest relative gap between the applied and the promised rate, over all runs."""
    out = {}
    for name, promise in promises.items():
        worst = 0.0
        for seed, r in rates[rates["config"] == name].groupby("seed"):
            h = history[(history["config"] == name) & (history["seed"] == seed)]
            want = promise(r, h)
            worst = max(worst, float(np.max(np.abs(r["rate"].to_numpy() - want) / want)))
        out[name] = worst
    return pd.Series(out, name="max relative error")


def plot_rates(rates: pd.DataFrame, *, seed: int | None = None, title: str | None = None):
    """The learning rate applied at every update, one line per config (one seed), log scale."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, style

    style()
    seed = int(rates["seed"].min()) if seed is None else seed
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    for name, r in rates[rates["seed"] == seed].groupby("config", sort=False):
        ax.plot(r["step"], r["rate"], label=str(name), lw=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("update (batch) number")
    ax.set_ylabel("learning rate applied")
    ax.legend(loc="lower left", ncols=2)
    return finish(fig, title, ax)


def plot_finder(curves: pd.DataFrame, chosen: Mapping[str, float], *, title: str | None = None):
    """Smoothed loss vs learning rate for each optimizer (log x), the mean over the seeds'
    finder runs (:func:`mean_curve`) where ``curves`` has several, the chosen rate marked."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, style

    style()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    n_seeds = curves["seed"].nunique() if "seed" in curves else 1
    firsts = []
    for name, runs in curves.groupby("config", sort=False):
        c = mean_curve(runs) if "seed" in runs else runs
        (line,) = ax.plot(c["rate"], c["smoothed"], lw=1.3, label=f"{name} → {chosen[name]:.2g}")
        pick = np.interp(np.log(chosen[name]), np.log(c["rate"]), c["smoothed"])
        ax.plot([chosen[name]], [pick], "o", color=line.get_color(), ms=5)
        firsts.append(float(c["smoothed"].iloc[0]))
    ax.set_xscale("log")
    ax.set_ylim(0, max(3.5, max(firsts) * 1.2))
    ax.set_xlabel("learning rate (log scale)")
    ylabel = "training loss (smoothed)"
    ax.set_ylabel(ylabel if n_seeds == 1 else f"{ylabel}, mean of {n_seeds} seeds")
    ax.legend(loc="lower left", ncols=2, title="optimizer → chosen rate (●)")
    return finish(fig, title, ax)


JIT = "auto"


@dataclass(frozen=True)
class Surface:
    """A 2-D function with its gradient, its minimum, a start point and a plotting window."""

    name: str
    value: Callable[[Any, Any], Any]  # f(x, y) in plain arithmetic: NumPy arrays or tensors
    minimum: tuple[float, float]
    start: tuple[float, float]
    window: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max


def quadratic(a: float = 0.1, b: float = 10.0, start: tuple[float, float] = (-9.0, 1.5)) -> Surface:
    """The ill-conditioned bowl ``f = (a x² + b y²) / 2``: flat along x, steep along y (b/a = 100)."""

    def value(x, y):
        return 0.5 * (a * x**2 + b * y**2)

    return Surface(
        f"quadratic (curvatures {a:g} and {b:g})", value, (0.0, 0.0), start, (-10.0, 2.0, -2.0, 2.0)
    )


def rosenbrock(scale: float = 100.0, start: tuple[float, float] = (-1.5, 2.0)) -> Surface:
    """Rosenbrock's long curved valley ``f = (1 - x)² + scale (y - x²)²``, minimum at (1, 1)."""

    def value(x, y):
        return (1 - x) ** 2 + scale * (y - x**2) ** 2

    return Surface(
        f"Rosenbrock valley (scale {scale:g})", value, (1.0, 1.0), start, (-2.0, 2.0, -1.0, 3.0)
    )


def surface_optimizers(learning_rate: float) -> dict[str, keras.optimizers.Optimizer]:
    """The article's optimizers (and AdamW), all at one ``learning_rate``, Keras defaults otherwise."""
    from dnnbook.optimizers import OPTIMIZER_NAMES, make_optimizer

    return {name: make_optimizer(name, float(learning_rate)) for name in OPTIMIZER_NAMES}


class _Point(keras.layers.Layer):
    """A layer whose only weights are ``n`` copies of a 2-D point; it outputs ``f`` at each."""

    def __init__(self, surface: Surface, n: int = 1) -> None:
        super().__init__()
        self.surface = surface
        self.w = self.add_weight(shape=(n, 2), initializer="zeros", name="w")

    def call(self, inputs):
        f = self.surface.value(self.w[:, 0], self.w[:, 1])
        return ops.zeros_like(inputs[:, :1]) + ops.sum(f)


class _Recorder(keras.callbacks.Callback):
    def __init__(self, variable: Any) -> None:
        super().__init__()
        self.variable, self.points = variable, []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        sync(self.model)  # JAX keeps the weights outside the variables during fit
        self.points.append(ops.convert_to_numpy(self.variable.value).copy())


class Descent:
    """One optimizer compiled once on one surface; :meth:`run` restarts it at any learning rate.

    Training is ``model.fit`` on a one-weight model whose loss is the surface, so the
    optimizer update runs compiled, exactly as when it trains a network.
    """

    def __init__(self, surface: Surface, optimizer: keras.optimizers.Optimizer) -> None:
        self.surface, self.optimizer = surface, optimizer
        self.layer = _Point(surface)
        inputs = keras.Input(shape=(1,))
        self.model = keras.Model(inputs, self.layer(inputs))
        self.model.compile(
            optimizer=optimizer, loss=lambda y_true, y_pred: ops.mean(y_pred), jit_compile=JIT
        )

    def run(self, steps: int, learning_rate: float | None = None) -> np.ndarray:
        """The ``(steps + 1, 2)`` trajectory from the start point (NaN from a divergence on)."""
        self.layer.w.assign(np.asarray([self.surface.start], dtype="float32"))
        if self.optimizer.built:  # fresh optimizer state: zero moments and step counter
            for v in self.optimizer.variables:
                v.assign(ops.zeros(v.shape, dtype=v.dtype))
        if learning_rate is not None:
            self.optimizer.learning_rate = float(learning_rate)
        rec = _Recorder(self.layer.w)
        zeros = np.zeros((steps, 1), dtype="float32")
        self.model.fit(
            zeros, zeros, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=[rec]
        )
        path = np.vstack([np.asarray([self.surface.start]), np.concatenate(rec.points)])
        bad = ~np.all(np.isfinite(path) & (np.abs(path) < 1e6), axis=1)
        if bad.any():
            path[np.argmax(bad) :] = np.nan
        return path


def descend(surface: Surface, optimizer: keras.optimizers.Optimizer, steps: int) -> np.ndarray:
    """Step ``optimizer`` on ``surface`` from its start; return the ``(steps + 1, 2)`` trajectory."""
    return Descent(surface, optimizer).run(steps)


def race(
    surface: Surface, optimizers: Mapping[str, keras.optimizers.Optimizer], steps: int
) -> dict[str, np.ndarray]:
    """Trajectories of every optimizer on ``surface`` (fresh state each)."""
    return {name: descend(surface, opt, steps) for name, opt in optimizers.items()}


def losses(surface: Surface, path: np.ndarray) -> np.ndarray:
    """The loss at every point of a trajectory (NaN after a divergence)."""
    return surface.value(path[:, 0], path[:, 1])


def sign_changes(values: Sequence[float], tol: float = 0.0) -> int:
    """How often ``values`` crosses zero, ignoring points with ``|value| <= tol``.

    Along the steep axis of a bowl, each crossing is an overshoot past the minimum.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (np.abs(v) > tol)]
    return int(np.sum(np.sign(v[1:]) != np.sign(v[:-1])))


def step_lengths(path: np.ndarray) -> np.ndarray:
    """Euclidean length of every update along a trajectory."""
    return np.linalg.norm(np.diff(path, axis=0), axis=1)


def distance_to_minimum(surface: Surface, path: np.ndarray) -> float:
    """Distance from the last finite point of ``path`` to the surface's minimum (inf if it diverged)."""
    finite = path[np.all(np.isfinite(path), axis=1)]
    if len(finite) < len(path):
        return float("inf")
    return float(np.linalg.norm(finite[-1] - np.asarray(surface.minimum)))


def tuning_window(
    surface: Surface,
    make: Callable[[float], keras.optimizers.Optimizer],
    rates: Sequence[float],
    steps: int,
    tol: float,
) -> np.ndarray:
    """For each learning rate: does the optimizer end within ``tol`` of the minimum after ``steps``?"""
    descent = Descent(surface, make(float(rates[0])))
    return np.array([distance_to_minimum(surface, descent.run(steps, lr)) < tol for lr in rates])


def plot_race(
    surface: Surface,
    paths: Mapping[str, np.ndarray],
    *,
    title: str | None = None,
    log_loss: bool = True,
):
    """Trajectories over the contour plot (left) and the loss per step (right); returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, style

    style()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.0, 4.0), gridspec_kw={"width_ratios": [1.3, 1]})
    x0, x1, y0, y1 = surface.window
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    z = surface.value(gx, gy)
    ax.contour(gx, gy, np.log10(z + 1e-3), levels=20, colors="lightgrey", linewidths=0.7)
    for name, path in paths.items():
        (line,) = ax.plot(path[:, 0], path[:, 1], lw=1.2, label=name)
        bx.plot(
            np.arange(len(path)), losses(surface, path), lw=1.2, color=line.get_color(), label=name
        )
    ax.plot(*surface.minimum, "k*", ms=10)
    ax.plot(*surface.start, "ko", ms=5)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("trajectories (● start, ★ minimum)")
    bx.set_xlabel("step")
    bx.set_ylabel("loss f(x, y)")
    if log_loss:
        bx.set_yscale("log")
    bx.set_title("loss per step")
    bx.legend(loc="lower left", ncols=2)
    return finish(fig, title)


# --- the chapter's claims, as conditions a test can also call -------------------------------


def overshoots(
    crossings: Mapping[str, int], fast: str = "momentum", slow: str = "SGD", more_than: int = 9
) -> Check:
    """``fast`` crosses y = 0 more than ``more_than`` times and ``slow`` never does.

    Margin: in crossings, the smaller of ``fast - more_than`` and ``1 - slow``."""
    margin = min(crossings[fast] - more_than, 1 - crossings[slow])
    return Check(
        margin > 0, f"crossings: {fast} {crossings[fast]}, {slow} {crossings[slow]}", float(margin)
    )


def brakes(crossings: Mapping[str, int], braked: str = "Nesterov", free: str = "momentum") -> Check:
    """``braked`` crosses y = 0 fewer than half as often as ``free``; margin in crossings."""
    margin = crossings[free] / 2 - crossings[braked]
    return Check(
        margin > 0,
        f"crossings: {braked} {crossings[braked]}, {free} {crossings[free]}",
        float(margin),
    )


def stalls(
    surface: Surface,
    paths: Mapping[str, np.ndarray],
    stalled: str = "AdaGrad",
    others: Sequence[str] = ("RMSProp", "Adam"),
    shrink: float = 3.0,
    farther: float = 10.0,
) -> Check:
    """``stalled``'s last 10 steps are over ``shrink``× shorter than its first 10, and it ends
    over ``farther``× farther from the minimum than every one of ``others``.

    Margin: the smaller relative excess over the two thresholds (0.5 = 50% above it)."""
    steps = step_lengths(paths[stalled])
    ratio = float(steps[:10].mean() / steps[-10:].mean())
    dist = {k: distance_to_minimum(surface, paths[k]) for k in (stalled, *others)}
    nearest_other = max(dist[k] for k in others)
    apart = dist[stalled] / nearest_other if nearest_other > 0 else math.inf
    margin = min(ratio / shrink - 1, apart / farther - 1)
    where = ", ".join(f"{k} {dist[k]:.3f}" for k in dist)
    return Check(
        margin > 0,
        f"{stalled}'s steps shrink {ratio:.1f}×; distance to minimum: {where}",
        float(margin),
    )


def wider_window(
    works: Mapping[str, np.ndarray],
    wide: Sequence[str] = ("Adam", "Nadam"),
    middle: str = "momentum",
    narrow: str = "SGD",
) -> Check:
    """Each of ``wide`` works at more learning rates than ``middle``, and ``middle`` at more than
    ``narrow``; margin: the smallest of those differences, in rates of the grid."""
    n = {k: int(np.sum(v)) for k, v in works.items()}
    margin = min(min(n[k] for k in wide) - n[middle], n[middle] - n[narrow])
    counts = ", ".join(f"{k} {n[k]}" for k in (*wide, middle, narrow))
    size = len(next(iter(works.values())))
    return Check(margin > 0, f"rates that work (of {size}): {counts}", float(margin))


def finder_gap(
    chosen: Mapping[str, float],
    adaptive: Sequence[str] = ("RMSProp", "Adam", "Nadam"),
    reference: str = "SGD",
    factor: float = 3.0,
) -> Check:
    """The finder's rate for each of ``adaptive`` is over ``factor``× lower than ``reference``'s.

    Margin: how many times over ``factor`` the smallest ratio lies (``ratio / factor - 1``)."""
    ratios = {k: chosen[reference] / chosen[k] for k in adaptive}
    margin = min(ratios.values()) / factor - 1
    shown = ", ".join(f"{k} {r:.1f}×" for k, r in ratios.items())
    return Check(margin > 0, f"{reference}'s rate / each one's: {shown}", float(margin))


def learns(
    history: pd.DataFrame, chance: float = 0.1, share: float = 0.5, metric: str = "val_accuracy"
) -> Check:
    """Every run of every config ends more than ``share`` of the way from ``chance`` to the
    best config's mean final ``metric``. Margin: the lowest run's distance above that line."""
    last = experiments.final(history)
    means = last.groupby("config", observed=True)[metric].mean()
    line = chance + share * (float(means.max()) - chance)
    worst = last.loc[last[metric].idxmin()]
    return Check(
        float(worst[metric]) > line,
        f"lowest final {metric} {worst[metric]:.3f} ({worst['config']}, seed {worst['seed']}); "
        f"line {line:.3f} = {chance:g} + {share:g} × (best mean {means.max():.3f} "
        f"({means.idxmax()}) − {chance:g})",
        float(worst[metric]) - line,
    )


def not_below(
    history: pd.DataFrame,
    config: str,
    reference: str,
    tolerance: float,
    metric: str = "val_accuracy",
) -> Check:
    """``config`` ends no more than ``tolerance`` below ``reference`` (one-sided 95%: the lower
    end of the 90% CI of the paired difference lies above ``-tolerance``). Margin: that lower
    end plus ``tolerance``."""
    diff = experiments.compare(history, config, reference, metric, level=0.90)
    return Check(
        diff.low > -tolerance,
        f"{config} − {reference} {diff.mean:+.4f}, one-sided 95% bound {diff.low:+.4f} "
        f"(tolerance {tolerance:g})",
        float(diff.low + tolerance),
    )


def ahead(
    history: pd.DataFrame,
    a: str,
    b: str,
    *,
    epoch: int | None = None,
    metric: str = "val_accuracy",
    one_sided: bool = False,
) -> Check:
    """``a`` beats ``b`` (at ``epoch``, else at the last): the 95% CI of the paired difference
    lies above 0, or with ``one_sided`` its one-sided 95% lower bound
    (:func:`dnnbook.experiments.paired_check`). Margin: that lower end."""
    frame = history if epoch is None else history[history["epoch"] == epoch]
    when = "at the last epoch" if epoch is None else f"after epoch {epoch}"
    label = f"{a} − {b} {when}" if metric == "val_accuracy" else f"{metric}, {a} − {b} {when}"
    table = experiments.per_seed(frame, metric)
    return experiments.paired_check(table, a, b, one_sided=one_sided, label=label)


def faster(history: pd.DataFrame, a: str, b: str, *, epoch: int = 1) -> Check:
    """``a`` learns faster than ``b`` in epoch ``epoch``: its training loss over that epoch (the
    mean over the epoch's batches, as Keras logs it, so the early updates count) is lower, the
    95% CI of ``b − a``, paired by seed, above 0 (:func:`ahead` on the loss, ``b`` first).
    Margin: that CI's lower end."""
    return ahead(history, b, a, epoch=epoch, metric="loss")


def not_beaten(
    history: pd.DataFrame,
    chosen: str,
    others: Sequence[str],
    tolerance: float,
    metric: str = "val_accuracy",
) -> Check:
    """No config of ``others`` beats ``chosen`` by more than ``tolerance`` (one-sided 95%: the
    upper end of the 90% CI of other − chosen lies below ``tolerance``). Margin: ``tolerance``
    minus the largest upper end."""
    diffs = {k: experiments.compare(history, k, chosen, metric, level=0.90) for k in others}
    margin = tolerance - max(d.high for d in diffs.values())
    shown = "; ".join(
        f"{k} − {chosen} {d.mean:+.4f}, one-sided 95% bound {d.high:+.4f}" for k, d in diffs.items()
    )
    return Check(margin > 0, f"{shown} (tolerance {tolerance:g})", float(margin))


def rates_applied(errors: pd.Series, tolerance: float = 1e-5) -> Check:
    """The largest relative error between applied and promised rates is below ``tolerance``.

    Margin: in orders of magnitude, ``log10(tolerance / error)``."""
    worst = float(errors.max())
    margin = math.log10(tolerance / worst) if worst > 0 else math.inf
    return Check(
        worst < tolerance, f"largest relative error {worst:.1e} ({errors.idxmax()})", margin
    )


def piecewise_drop(rates: pd.DataFrame, config: str = "piecewise", factor: float = 10.0) -> Check:
    """In every run of ``config`` the first applied rate is ``factor``× the last (to 1e-5).

    Margin: 1e-5 minus the largest relative error of that ratio."""
    drop = (
        rates[rates["config"] == config]
        .groupby("seed")["rate"]
        .agg(lambda r: r.iloc[0] / r.iloc[-1])
    )
    worst = float(np.max(np.abs(drop.to_numpy() / factor - 1)))
    return Check(
        worst < 1e-5,
        f"first / last rate per seed: {', '.join(f'{d:.3f}' for d in drop)}",
        1e-5 - worst,
    )


def both(*checks: Check) -> Check:
    """All of ``checks`` at once: holds when each does; the evidence joined, the smallest margin."""
    return Check(
        all(c.holds for c in checks),
        "; ".join(c.evidence for c in checks),
        min(c.margin for c in checks),
    )
