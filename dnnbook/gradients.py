"""Chapter 1, vanishing and exploding gradients: probes that look inside a network and clipping.

Probes measure per-layer gradient norms, activation statistics and dead units; the
activation/initializer pairings of the chapter and the saturation arithmetic of the logistic
function live here too. :func:`clipped_update` shows what ``clipvalue``, ``clipnorm`` and
``global_clipnorm`` do to a given gradient through a real Keras optimizer. Gradients come from
:func:`dnnbook.engine.backend.gradients`; everything here uses ``keras`` and NumPy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook import models
from dnnbook.engine import backend

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
    return pd.DataFrame(_kernel_norms(model, backend.gradients(model, x, y)))


def _kernel_norms(model: keras.Model, grads: Mapping[str, np.ndarray]) -> list[dict]:
    """One row per Dense kernel, input first: ``layer``, ``name`` (its path), ``norm`` of its gradient."""
    kernels = [layer.kernel.path for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    return [{"layer": i + 1, "name": path, "norm": float(np.linalg.norm(grads[path]))}
            for i, path in enumerate(kernels)]


def hidden_activations(model: keras.Model, x: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pre-activation, activation) of every hidden activation layer, in inference mode.

    Runs the model layer by layer; a hidden activation is the output of a layer in
    :data:`ACTIVATION_LAYERS`, its pre-activation that layer's input.
    """
    h = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    _, seen = backend.layer_pass(model, h, ACTIVATION_LAYERS)
    return [(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)) for a, b in seen]


class EpochProbe(keras.callbacks.Callback):
    """Probes the model being fit at the end of every epoch, on one fixed batch ``(x, y)``.

    ``self.frame`` gets one row per epoch and Dense layer (``grad_norm``, as
    :func:`layer_gradient_norms`) and ``self.activations`` one per epoch and hidden activation
    layer (``mean``, ``std``, as :func:`activation_stats`). Gradients and activations come from
    one pass (:func:`dnnbook.engine.backend.probe_function`), compiled once per fit (TensorFlow) when
    the fit has at least ``compile_from`` epochs: a trace costs about as much as seven eager
    passes and saves about three quarters of each later one (``benchmarks/probe_overhead.py``).
    """

    def __init__(self, x: Any, y: Any, compile_from: int = 10) -> None:
        super().__init__()
        self.x, self.y, self.compile_from = x, y, compile_from
        self.frame, self.activations = pd.DataFrame(), pd.DataFrame()

    def on_train_begin(self, logs: dict | None = None) -> None:
        epochs = (self.params or {}).get("epochs") or 0
        self._probe = backend.probe_function(self.model, ACTIVATION_LAYERS, compiled=epochs >= self.compile_from)
        self._rows: list[dict] = []
        self._acts: list[dict] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        grads, seen = self._probe(self.x, self.y)
        self._rows += [{"epoch": epoch + 1, "layer": r["layer"], "grad_norm": r["norm"]}
                       for r in _kernel_norms(self.model, grads)]
        self._acts += [{"epoch": epoch + 1, "layer": i + 1, "mean": float(a.mean()), "std": float(a.std())}
                       for i, (_, a) in enumerate(seen)]
        self.frame, self.activations = pd.DataFrame(self._rows), pd.DataFrame(self._acts)


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




def compiled(build: Callable[[], keras.Model], optimizer: Callable[[], Any]) -> Callable[[], keras.Model]:
    """A factory of fresh models: ``build()`` compiled as a classifier with a fresh ``optimizer()``."""
    return lambda: models.compile_classifier(build(), optimizer())


def run_seeds(configs: Mapping[str, Callable[[], keras.Model]], data: Any, seeds: Sequence[int], *,
              epochs: int, batch_size: int = 32, validation_batch_size: int = 1000,
              probe: Callable[[keras.Model], pd.DataFrame] | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Train every config for every seed with :func:`dnnbook.experiments.run` (in lockstep
    where it can), without test evaluation.

    Returns the tidy history and, if ``probe`` is given, the concatenation of ``probe(model)``
    after training, one per run, with ``config`` and ``seed`` columns.
    """
    from dnnbook import experiments

    kept: dict = {}
    history = experiments.run(configs, data, seeds, epochs=epochs, batch_size=batch_size,
                              evaluate_test=False, models=kept,
                              fit_kwargs={"validation_batch_size": validation_batch_size})
    if probe is None:
        return history, None
    probed = pd.concat([probe(kept[(name, int(seed))]).assign(config=name, seed=int(seed))
                        for name in configs for seed in seeds], ignore_index=True)
    return history, probed.assign(config=pd.Categorical(probed["config"], categories=list(configs), ordered=True))


def pairing_configs(names: Sequence[str], input_shape: Sequence[int], n_classes: int, *, depth: int,
                    width: int = 100, optimizer: Callable[[], Any] | None = None,
                    **kwargs: Any) -> dict[str, Callable[[], keras.Model]]:
    """Factories of the compiled deep MLP with each named pairing, for :func:`run_seeds`.

    ``optimizer`` returns a fresh optimizer (default: plain SGD, learning rate 0.01).
    """
    optimizer = optimizer or (lambda: keras.optimizers.SGD(learning_rate=0.01))
    return {name: compiled(lambda name=name: deep_mlp(name, input_shape, n_classes, depth=depth,
                                                         width=width, **kwargs), optimizer)
            for name in names}


def saturated_fraction(model: keras.Model, x: Any, threshold: float = 0.01) -> float:
    """Fraction of hidden pre-activations z where the logistic slope σ'(z) is below ``threshold``."""
    zs = [z.ravel() for z, _ in hidden_activations(model, x)]
    return float(np.mean(sigmoid_derivative(np.concatenate(zs)) < threshold))


def dead_unit_gradients(model: keras.Model, x: Any, y: Any) -> pd.DataFrame:
    """Each never-positive hidden unit on the batch (see :func:`dead_units`) with the norm of
    the loss gradient w.r.t. its incoming weights: exactly 0 for a dead ReLU, not for LeakyReLU."""
    grads = backend.gradients(model, x, y)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    rows = []
    for i, (z, _) in enumerate(hidden_activations(model, x)):
        never = np.flatnonzero(np.all(z.reshape(len(z), -1) <= 0.0, axis=0))
        col = np.linalg.norm(grads[dense[i].kernel.path], axis=0)
        rows += [{"layer": i + 1, "unit": int(u), "grad_norm": float(col[u])} for u in never]
    return pd.DataFrame(rows, columns=["layer", "unit", "grad_norm"])


def total_gradient_norm(model: keras.Model, x: Any, y: Any) -> float:
    """Norm of the loss gradient w.r.t. all trainable weights at once (inference mode): 0 when
    nothing flows back from the loss, whatever the activations (e.g. a saturated softmax)."""
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in backend.gradients(model, x, y).values())))


def bn_parameters(model: keras.Model) -> pd.DataFrame:
    """Per BatchNormalization layer: inputs n, total, trainable (γ, β) and non-trainable
    (moving mean and variance) parameter counts, read from the model."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            count = lambda vs: int(sum(np.prod(v.shape) for v in vs))  # noqa: E731
            rows.append({"layer": layer.name, "inputs": int(layer.gamma.shape[0]),
                         "parameters": layer.count_params(),
                         "trainable": count(layer.trainable_weights),
                         "non_trainable": count(layer.non_trainable_weights)})
    return pd.DataFrame(rows).set_index("layer")


def batch_dependence(model: keras.Model, x: Any, size: int = 64) -> dict[str, float]:
    """How much example 0's output changes when the rest of its batch changes.

    Feeds ``x[:size]`` and ``[x[0]] + x[size:2*size-1]`` in inference mode (moving averages)
    and in training mode (batch statistics) and returns the largest change of example 0's
    predicted probabilities in each mode. The model's weights are restored afterwards.
    """
    x = np.asarray(x, dtype="float32")
    a, b = x[:size], np.concatenate([x[:1], x[size:2 * size - 1]])
    saved = model.get_weights()
    out = {}
    for mode, training in (("inference", False), ("training", True)):
        pa = keras.ops.convert_to_numpy(model(a, training=training))[0]
        pb = keras.ops.convert_to_numpy(model(b, training=training))[0]
        out[mode] = float(np.abs(pa - pb).max())
    model.set_weights(saved)
    return out


# --- figures ----------------------------------------------------------------------------------
def plot_layer_norms(norms: pd.DataFrame, title: str | None = None):
    """Gradient norm per Dense kernel (log scale), one line per config; returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for name, g in norms.groupby("config", observed=True, sort=False):
        ax.plot(g["layer"], g["norm"].where(g["norm"] > 0), marker="o", ms=2.5, label=str(name))
    ax.set_yscale("log")
    ax.set_xlabel("Dense layer (1 = next to the input; last = softmax output)")
    ax.set_ylabel("‖∂loss/∂kernel‖ (L2 norm, log scale)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_activation_stats(acts: pd.DataFrame, title: str | None = None):
    """Mean and std of each hidden layer's activations, one line per config; returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), sharex=True)
    for name, g in acts.groupby("config", observed=True, sort=False):
        for ax, col in zip(axes, ("mean", "std")):
            ax.plot(g["layer"], g[col], marker="o", ms=2, label=str(name))
    axes[0].set_ylabel("mean activation")
    axes[1].set_ylabel("std of activations (log scale)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("hidden layer (1 = next to the input)")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_sigmoid(depths: Sequence[int] = tuple(range(1, 21))):
    """Left: σ and σ'. Right: the gradient left after n sigmoid units (log scale)."""
    import matplotlib.pyplot as plt

    from dnnbook import plots

    plots.style()
    z = np.linspace(-8, 8, 801)
    chain = sigmoid_chain(depths)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    a.plot(z, sigmoid(z), label="σ(z)")
    a.plot(z, sigmoid_derivative(z), label="σ′(z), max 0.25 at z = 0")
    a.set_xlabel("pre-activation z")
    a.set_ylabel("value")
    a.legend(loc="upper left")
    b.semilogy(chain["n"], chain["bound"], "--", label="0.25ⁿ (best case)")
    b.semilogy(chain["n"], chain["gradient"], "o-", ms=3, label="chain a_k = σ(a_{k−1}), a_0 = 0")
    b.set_xlabel("number of sigmoid units n")
    b.set_ylabel("∂a_n/∂a_0 (log scale)")
    b.legend(loc="lower left")
    fig.tight_layout()
    return fig


def clipped_update(gradients: Sequence[Any], **clip: Any) -> list[np.ndarray]:
    """The step plain SGD (learning rate 1) takes for ``gradients`` with the given clipping.

    ``gradients`` holds one array per variable; ``clip`` is passed to the optimizer
    (``clipvalue=``, ``clipnorm=`` or ``global_clipnorm=``). Variables start at zero, one
    ``apply_gradients`` call is made and ``-(new value)`` is read back: the clipped gradient.
    """
    grads = [np.asarray(g, dtype="float32") for g in gradients]
    variables = [keras.Variable(np.zeros_like(g), name=f"w{i}") for i, g in enumerate(grads)]
    optimizer = keras.optimizers.SGD(learning_rate=1.0, **clip)
    optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
    return [-np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]


def clipping_table(gradients: Sequence[Any], settings: dict[str, dict[str, Any]]) -> "Any":
    """One row per clipping setting: the clipped gradient of each variable, and the global norm."""
    import pandas as pd

    rows = {}
    for name, clip in settings.items():
        out = clipped_update(gradients, **clip)
        row = {f"variable {i + 1}": np.round(g, 8).tolist() for i, g in enumerate(out)}
        row["global norm"] = float(np.sqrt(sum(float((g.astype("float64") ** 2).sum()) for g in out)))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
