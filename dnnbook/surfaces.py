"""Real Keras optimizers on 2-D test functions: trajectories, losses, oscillations.

A surface is a formula in plain arithmetic, so it evaluates NumPy grids (for contour plots)
and backend tensors alike. The optimizers are the very ones that train the networks
(``keras.optimizers.SGD``, ``Adam``...), stepped by ``model.fit`` on a model whose only weight
is the 2-D point and whose loss is the surface: any backend, compiled, with autodiff gradients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
from keras import ops
JIT = "auto"


@dataclass(frozen=True)
class Surface:
    """A 2-D function with its gradient, its minimum, a start point and a plotting window."""

    name: str
    value: Callable[[Any, Any], Any]       # f(x, y) in plain arithmetic: NumPy arrays or tensors
    minimum: tuple[float, float]
    start: tuple[float, float]
    window: tuple[float, float, float, float]               # x_min, x_max, y_min, y_max


def quadratic(a: float = 0.1, b: float = 10.0, start: tuple[float, float] = (-9.0, 1.5)) -> Surface:
    """The ill-conditioned bowl ``f = (a x² + b y²) / 2``: flat along x, steep along y (b/a = 100)."""

    def value(x, y):
        return 0.5 * (a * x ** 2 + b * y ** 2)

    return Surface(f"quadratic (curvatures {a:g} and {b:g})", value, (0.0, 0.0), start,
                   (-10.0, 2.0, -2.0, 2.0))


def rosenbrock(scale: float = 100.0, start: tuple[float, float] = (-1.5, 2.0)) -> Surface:
    """Rosenbrock's long curved valley ``f = (1 - x)² + scale (y - x²)²``, minimum at (1, 1)."""

    def value(x, y):
        return (1 - x) ** 2 + scale * (y - x ** 2) ** 2

    return Surface(f"Rosenbrock valley (scale {scale:g})", value, (1.0, 1.0), start,
                   (-2.0, 2.0, -1.0, 3.0))


def optimizers(learning_rate: float) -> dict[str, keras.optimizers.Optimizer]:
    """The article's optimizers (and AdamW), all at one ``learning_rate``, Keras defaults otherwise."""
    from dnnbook.schedules import OPTIMIZER_NAMES, make_optimizer

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
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX keeps the weights outside the variables during fit
            sync()
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
        self.model.compile(optimizer=optimizer, loss=lambda y_true, y_pred: ops.mean(y_pred), jit_compile=JIT)

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
        self.model.fit(zeros, zeros, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=[rec])
        path = np.vstack([np.asarray([self.surface.start]), np.concatenate(rec.points)])
        bad = ~np.all(np.isfinite(path) & (np.abs(path) < 1e6), axis=1)
        if bad.any():
            path[np.argmax(bad):] = np.nan
        return path


def descend(surface: Surface, optimizer: keras.optimizers.Optimizer, steps: int) -> np.ndarray:
    """Step ``optimizer`` on ``surface`` from its start; return the ``(steps + 1, 2)`` trajectory."""
    return Descent(surface, optimizer).run(steps)


def race(surface: Surface, optimizers: Mapping[str, keras.optimizers.Optimizer],
         steps: int) -> dict[str, np.ndarray]:
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


def tuning_window(surface: Surface, make: Callable[[float], keras.optimizers.Optimizer],
                  rates: Sequence[float], steps: int, tol: float) -> np.ndarray:
    """For each learning rate: does the optimizer end within ``tol`` of the minimum after ``steps``?"""
    descent = Descent(surface, make(float(rates[0])))
    return np.array([distance_to_minimum(surface, descent.run(steps, lr)) < tol for lr in rates])


def plot_race(surface: Surface, paths: Mapping[str, np.ndarray], *, title: str | None = None,
              log_loss: bool = True):
    """Trajectories over the contour plot (left) and the loss per step (right); returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import style

    style()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.0, 4.0), gridspec_kw={"width_ratios": [1.3, 1]})
    x0, x1, y0, y1 = surface.window
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    z = surface.value(gx, gy)
    ax.contour(gx, gy, np.log10(z + 1e-3), levels=20, colors="lightgrey", linewidths=0.7)
    for name, path in paths.items():
        line, = ax.plot(path[:, 0], path[:, 1], lw=1.2, label=name)
        bx.plot(np.arange(len(path)), losses(surface, path), lw=1.2, color=line.get_color(), label=name)
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
