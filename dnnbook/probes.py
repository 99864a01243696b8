"""Probes that look inside a network: per-layer gradient norms, activation statistics, dead units.

Also the activation/initializer pairings of the gradients chapter and the saturation arithmetic
of the logistic function. The gradients themselves come from :func:`dnnbook.backend.gradients`,
the only backend-specific code in dnnbook; everything here uses ``keras`` and NumPy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook import backend, models

ACTIVATION_LAYERS = (keras.layers.Activation, keras.layers.LeakyReLU, keras.layers.PReLU,
                     keras.layers.ELU, keras.layers.ReLU)


# --- the logistic function and its saturation ------------------------------------------------
def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-z))."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def sigmoid_derivative(z: np.ndarray) -> np.ndarray:
    """σ'(z) = σ(z)(1 − σ(z)); its maximum is 0.25, at z = 0."""
    s = sigmoid(z)
    return s * (1.0 - s)


def sigmoid_chain(depths: Sequence[int], z0: float = 0.0, weight: float = 1.0) -> pd.DataFrame:
    """Gradient d a_n / d a_0 through a chain of n scalar units a_k = σ(w·a_{k−1}), by the chain rule.

    Starting from ``a_0 = z0``; with ``weight`` 1 the best any chain can do is 0.25 per unit.
    Returns one row per depth: ``n``, ``gradient`` (the product of w·σ'(z_k)), ``bound`` (0.25^n).
    """
    rows, a, grad, k = [], float(z0), 1.0, 0
    for n in sorted(int(d) for d in depths):
        while k < n:
            z = weight * a
            grad *= weight * float(sigmoid_derivative(z))
            a = float(sigmoid(z))
            k += 1
        rows.append({"n": n, "gradient": grad, "bound": 0.25 ** n})
    return pd.DataFrame(rows)


# --- activation / initializer pairings ---------------------------------------------------------
@dataclass(frozen=True)
class Pairing:
    """An activation function with the weight initialization used for it."""

    activation: str
    initializer: Callable[[], Any]
    note: str = ""


PAIRINGS: dict[str, Pairing] = {
    "sigmoid + N(0, 1)": Pairing("sigmoid", lambda: keras.initializers.RandomNormal(0.0, 1.0),
                                 "the old default"),
    "sigmoid + Glorot": Pairing("sigmoid", lambda: "glorot_uniform"),
    "tanh + Glorot": Pairing("tanh", lambda: "glorot_uniform"),
    "ReLU + Glorot": Pairing("relu", lambda: "glorot_uniform"),
    "ReLU + He": Pairing("relu", lambda: "he_normal"),
    "LeakyReLU + He": Pairing("leaky_relu", lambda: "he_normal"),
    "ELU + He": Pairing("elu", lambda: "he_normal"),
    "SELU + LeCun": Pairing("selu", lambda: "lecun_normal"),
    "GELU + He": Pairing("gelu", lambda: "he_normal"),
}


def deep_mlp(pairing: str | Pairing, input_shape: Sequence[int], n_classes: int, *, depth: int,
             width: int = 100, **kwargs: Any) -> keras.Model:
    """A deep :func:`dnnbook.models.build_mlp` with one of the :data:`PAIRINGS` (uncompiled)."""
    p = PAIRINGS[pairing] if isinstance(pairing, str) else pairing
    return models.build_mlp(input_shape, n_classes, depth=depth, width=width,
                            activation=p.activation, initializer=p.initializer(), **kwargs)


# --- probes -----------------------------------------------------------------------------------
def layer_gradient_norms(model: keras.Model, x: Any, y: Any) -> pd.DataFrame:
    """The L2 norm of the loss gradient w.r.t. every Dense kernel, input layer first.

    One row per Dense layer: ``layer`` (1 = nearest the input; the last is the output layer),
    ``name`` (the variable path), ``norm``. Gradients of the mean cross-entropy on the batch.
    """
    grads = backend.gradients(model, x, y)
    kernels = [layer.kernel.path for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    rows = [{"layer": i + 1, "name": path, "norm": float(np.linalg.norm(grads[path]))}
            for i, path in enumerate(kernels)]
    return pd.DataFrame(rows)


def hidden_activations(model: keras.Model, x: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pre-activation, activation) of every hidden activation layer, in inference mode.

    Runs the model layer by layer; a hidden activation is the output of a layer in
    :data:`ACTIVATION_LAYERS`, its pre-activation that layer's input.
    """
    h = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    out = []
    for layer in model.layers:
        new = layer(h, training=False)
        if isinstance(layer, ACTIVATION_LAYERS):
            out.append((keras.ops.convert_to_numpy(h), keras.ops.convert_to_numpy(new)))
        h = new
    return out


def activation_stats(model: keras.Model, x: Any) -> pd.DataFrame:
    """Mean and std of every hidden layer's activations over a batch (all units pooled)."""
    rows = [{"layer": i + 1, "mean": float(a.mean()), "std": float(a.std())}
            for i, (_, a) in enumerate(hidden_activations(model, x))]
    return pd.DataFrame(rows)


def dead_units(model: keras.Model, x: Any) -> pd.DataFrame:
    """Per hidden layer, the fraction of units whose pre-activation is ≤ 0 on every example of ``x``.

    For ReLU such a unit outputs 0 and passes no gradient for the whole batch: it is dead.
    """
    rows = []
    for i, (z, _) in enumerate(hidden_activations(model, x)):
        never = np.all(z.reshape(len(z), -1) <= 0.0, axis=0)
        rows.append({"layer": i + 1, "units": never.size, "dead": int(never.sum()),
                     "dead_fraction": float(never.mean())})
    return pd.DataFrame(rows)


def spread(norms: pd.DataFrame, hidden_only: bool = True) -> float:
    """max / min of the gradient norms (hidden layers only by default): 10 = one order of magnitude."""
    v = norms["norm"].to_numpy()
    if hidden_only:
        v = v[:-1]
    return float(v.max() / v.min()) if v.min() > 0 else float("inf")


def first_to_last(norms: pd.DataFrame) -> float:
    """Gradient norm of the first hidden layer divided by that of the last hidden layer."""
    v = norms["norm"].to_numpy()
    return float(v[0] / v[-2]) if v[-2] > 0 else float("inf")


def probe_pairings(pairings: Mapping[str, Pairing] | Sequence[str], x: Any, y: Any, *, depth: int,
                   width: int, n_classes: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gradient norms and activation stats at initialization for each pairing, one seed.

    Returns two tidy frames with a ``config`` column: per-layer ``norm`` and per-layer
    activation ``mean``/``std``. Every pairing gets the same seed, hence comparable draws.
    """
    from dnnbook.runtime import seed_everything

    names = list(pairings)
    grads, acts = [], []
    for name in names:
        seed_everything(seed)
        model = deep_mlp(name if isinstance(pairings, Sequence) else pairings[name],
                         x.shape[1:], n_classes, depth=depth, width=width)
        g = layer_gradient_norms(model, x, y)
        a = activation_stats(model, x)
        g.insert(0, "config", name)
        a.insert(0, "config", name)
        grads.append(g)
        acts.append(a)
    cat = lambda df: df.assign(config=pd.Categorical(df["config"], categories=names, ordered=True))  # noqa: E731
    return cat(pd.concat(grads, ignore_index=True)), cat(pd.concat(acts, ignore_index=True))


class ReusedModel:
    """A model factory for :func:`dnnbook.experiments.run` that traces the training step once.

    Each call builds a fresh model with the current seed (cheap) and copies its initial weights
    into one cached, compiled model whose optimizer state is reset to zero, so every seed starts
    from its own initialization but the backend compiles the training step only once per config.
    """

    def __init__(self, build: Callable[[], keras.Model], optimizer: Callable[[], Any]) -> None:
        self.build, self.optimizer = build, optimizer
        self.model: keras.Model | None = None

    def __call__(self) -> keras.Model:
        fresh = self.build()
        if self.model is None:
            self.model = models.compile_classifier(fresh, self.optimizer())
            return self.model
        self.model.set_weights(fresh.get_weights())
        for var in self.model.optimizer.variables:
            if "learning_rate" not in var.path:
                var.assign(keras.ops.zeros(var.shape, var.dtype))
        return self.model


def pairing_configs(names: Sequence[str], input_shape: Sequence[int], n_classes: int, *, depth: int,
                    width: int = 100, optimizer: Callable[[], Any] | None = None,
                    **kwargs: Any) -> dict[str, ReusedModel]:
    """Factories (for :func:`dnnbook.experiments.run`) of the deep MLP with each named pairing."""
    optimizer = optimizer or (lambda: keras.optimizers.SGD(learning_rate=0.01))
    return {name: ReusedModel(lambda name=name: deep_mlp(name, input_shape, n_classes, depth=depth,
                                                         width=width, **kwargs), optimizer)
            for name in names}
