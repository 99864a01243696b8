"""Real Keras optimizers on 2-D test surfaces: trajectories, overshoots, and their figure.

A surface is a formula in plain arithmetic, so it evaluates NumPy grids (for contour plots)
and backend tensors alike. An optimizer is stepped by ``model.fit`` on a model whose only
weight is the 2-D point and whose loss is the surface, so its update runs compiled, exactly
as when it trains a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
from keras import ops

from dnnbook.engine.backend import sync


@dataclass(frozen=True)
class Surface:
    """A 2-D function, its minimum, a start point and a plotting window."""

    name: str
    value: Callable[[Any, Any], Any]  # f(x, y) in plain arithmetic: NumPy arrays or tensors
    minimum: tuple[float, float]
    start: tuple[float, float]
    window: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max


def quadratic(a: float = 0.1, b: float = 10.0, start: tuple[float, float] = (-9.0, 1.5)) -> Surface:
    """The ill-conditioned bowl ``f = (a x² + b y²) / 2``: flat along x, steep along y."""

    def value(x, y):
        return 0.5 * (a * x**2 + b * y**2)

    name = f"quadratic (curvatures {a:g} and {b:g})"
    return Surface(name, value, (0.0, 0.0), start, (-10.0, 2.0, -2.0, 2.0))


def rosenbrock(scale: float = 100.0, start: tuple[float, float] = (-1.5, 2.0)) -> Surface:
    """Rosenbrock's long curved valley ``f = (1 - x)² + scale (y - x²)²``, minimum (1, 1)."""

    def value(x, y):
        return (1 - x) ** 2 + scale * (y - x**2) ** 2

    name = f"Rosenbrock valley (scale {scale:g})"
    return Surface(name, value, (1.0, 1.0), start, (-2.0, 2.0, -1.0, 3.0))


class _Point(keras.layers.Layer):
    """A layer whose only weight is a 2-D point; it outputs the surface's value there."""

    def __init__(self, surface: Surface) -> None:
        super().__init__()
        self.surface = surface
        self.w = self.add_weight(shape=(1, 2), initializer="zeros", name="w")

    def call(self, inputs):
        f = self.surface.value(self.w[:, 0], self.w[:, 1])
        return ops.zeros_like(inputs[:, :1]) + ops.sum(f)


class _Recorder(keras.callbacks.Callback):
    """The point after every update."""

    def __init__(self, variable: Any) -> None:
        super().__init__()
        self.variable, self.points = variable, []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        sync(self.model)  # JAX keeps the weights outside the variables during fit
        self.points.append(ops.convert_to_numpy(self.variable.value).copy())


class Descent:
    """One optimizer compiled once on one surface; :meth:`run` restarts it at any rate."""

    def __init__(self, surface: Surface, optimizer: keras.optimizers.Optimizer) -> None:
        self.surface, self.optimizer = surface, optimizer
        self.layer = _Point(surface)
        inputs = keras.Input(shape=(1,))
        self.model = keras.Model(inputs, self.layer(inputs))
        self.model.compile(optimizer=optimizer, loss=lambda y_true, y_pred: ops.mean(y_pred))

    def run(self, steps: int, learning_rate: float | None = None) -> np.ndarray:
        """The ``(steps + 1, 2)`` trajectory from the start point (NaN once it diverged)."""
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


def race(
    surface: Surface, optimizers: Mapping[str, keras.optimizers.Optimizer], steps: int
) -> dict[str, np.ndarray]:
    """The trajectory of every optimizer on ``surface`` from its start (fresh state each)."""
    return {name: Descent(surface, opt).run(steps) for name, opt in optimizers.items()}


def sign_changes(values: Sequence[float], tol: float = 0.0) -> int:
    """How often ``values`` crosses zero, ignoring points with ``|value| <= tol``.

    Along the steep axis of a bowl, each crossing is an overshoot past the minimum."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (np.abs(v) > tol)]
    return int(np.sum(np.sign(v[1:]) != np.sign(v[:-1])))


def step_lengths(path: np.ndarray) -> np.ndarray:
    """The Euclidean length of every update along a trajectory."""
    return np.linalg.norm(np.diff(path, axis=0), axis=1)


def distance_to_minimum(surface: Surface, path: np.ndarray) -> float:
    """Distance from the end of ``path`` to the surface's minimum (inf if it diverged)."""
    if not np.all(np.isfinite(path)):
        return float("inf")
    return float(np.linalg.norm(path[-1] - np.asarray(surface.minimum)))


def tuning_window(
    surface: Surface,
    make: Callable[[float], keras.optimizers.Optimizer],
    rates: Sequence[float],
    steps: int,
    tol: float,
) -> np.ndarray:
    """Per learning rate: does ``make(rate)`` end within ``tol`` of the minimum after
    ``steps`` updates?"""
    descent = Descent(surface, make(float(rates[0])))
    ends = [distance_to_minimum(surface, descent.run(steps, rate)) for rate in rates]
    return np.asarray(ends) < tol


class _Restart(keras.callbacks.Callback):
    """Before every update: the point back at ``start``, the step counter at ``steps[i]``."""

    def __init__(self, variable: Any, start: np.ndarray, steps: Sequence[int]) -> None:
        super().__init__()
        self.variable, self.start, self.steps = variable, start, list(steps)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        sync(self.model)  # on JAX, written variables are read again only after a sync
        self.variable.assign(self.start)
        self.model.optimizer.iterations.assign(self.steps[batch])


def sgd_step_sizes(learning_rate: Any, at: Sequence[int]) -> np.ndarray:
    """The learning rate plain SGD applies at update number ``t`` for each ``t`` of ``at``,
    measured: the loss is ``x + y`` (gradient 1 everywhere), each update starts from (0, 0)
    with the step counter at ``t``, so it moves the point to ``(-rate, -rate)``."""
    surface = Surface("plane x + y", lambda x, y: x + y, (0.0, 0.0), (0.0, 0.0), (-1, 1, -1, 1))
    descent = Descent(surface, keras.optimizers.SGD(learning_rate=learning_rate))
    start = np.zeros((1, 2), dtype="float32")
    restart = _Restart(descent.layer.w, start, at)
    rec = _Recorder(descent.layer.w)
    zeros = np.zeros((len(at), 1), dtype="float32")
    descent.model.fit(
        zeros, zeros, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=[restart, rec]
    )
    return -np.concatenate(rec.points)[:, 0].astype(float)


def plot_race(surface: Surface, paths: Mapping[str, np.ndarray], *, title: str | None = None):
    """Trajectories over the contour plot (left), the loss per step (right, log scale)."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, style

    style()
    ratios = {"width_ratios": [1.3, 1]}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.0, 4.0), gridspec_kw=ratios)
    x0, x1, y0, y1 = surface.window
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    z = np.log10(surface.value(gx, gy) + 1e-3)
    ax.contour(gx, gy, z, levels=20, colors="lightgrey", linewidths=0.7)
    for name, path in paths.items():
        (line,) = ax.plot(path[:, 0], path[:, 1], lw=1.2, label=name)
        loss = surface.value(path[:, 0], path[:, 1])
        bx.plot(np.arange(len(path)), loss, lw=1.2, color=line.get_color(), label=name)
    ax.plot(*surface.minimum, "k*", ms=10)
    ax.plot(*surface.start, "ko", ms=5)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y")
    ax.set_title("trajectories (● start, ★ minimum)")
    bx.set(xlabel="step", ylabel="loss f(x, y)", yscale="log", title="loss per step")
    bx.legend(loc="lower left", ncols=2)
    return finish(fig, title)
