"""Chapter 1, vanishing and exploding gradients: probes that look inside a network and clipping.

Probes measure per-layer gradient norms, activation statistics and dead units; the
activation/initializer pairings of the chapter and the saturation arithmetic of the logistic
function live here too. :func:`clipped_update` shows what ``clipvalue``, ``clipnorm`` and
``global_clipnorm`` do to a given gradient through a real Keras optimizer. Gradients come from
:func:`dnnbook.autodiff.gradients`; everything here uses ``keras`` and NumPy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from dnnbook import autodiff, models, stats
from dnnbook.claims import Check
from dnnbook.engine import backend

ACTIVATION_LAYERS = models.ACTIVATION_LAYERS  # the layers probed as activations


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
        rows.append({"n": n, "gradient": grad, "bound": 0.25**n})
    return pd.DataFrame(rows)


# --- activation / initializer pairings ---------------------------------------------------------
@dataclass(frozen=True)
class Pairing:
    """An activation function with the weight initialization used for it."""

    activation: str
    initializer: Callable[[], Any]
    note: str = ""


def _normal() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, 1.0)


PAIRINGS: dict[str, Pairing] = {
    "sigmoid + N(0, 1)": Pairing("sigmoid", _normal, "the old default"),
    "tanh + N(0, 1)": Pairing("tanh", _normal, "the old default with tanh: explodes"),
    "sigmoid + Glorot": Pairing("sigmoid", lambda: "glorot_uniform"),
    "tanh + Glorot": Pairing("tanh", lambda: "glorot_uniform"),
    "ReLU + Glorot": Pairing("relu", lambda: "glorot_uniform"),
    "ReLU + He": Pairing("relu", lambda: "he_normal"),
    "LeakyReLU + He": Pairing("leaky_relu", lambda: "he_normal"),
    "ELU + He": Pairing("elu", lambda: "he_normal"),
    "SELU + LeCun": Pairing("selu", lambda: "lecun_normal"),
    "GELU + He": Pairing("gelu", lambda: "he_normal"),
}


def deep_mlp(
    pairing: str | Pairing,
    input_shape: Sequence[int],
    n_classes: int,
    *,
    depth: int,
    width: int = 100,
    **kwargs: Any,
) -> keras.Model:
    """A deep :func:`dnnbook.models.build_mlp` with one of the :data:`PAIRINGS` (uncompiled)."""
    p = PAIRINGS[pairing] if isinstance(pairing, str) else pairing
    return models.build_mlp(
        input_shape,
        n_classes,
        depth=depth,
        width=width,
        activation=p.activation,
        initializer=p.initializer(),
        **kwargs,
    )


# --- probes -----------------------------------------------------------------------------------
def layer_gradient_norms(
    model: keras.Model, x: Any, y: Any, training: bool = False
) -> pd.DataFrame:
    """The L2 norm of the loss gradient w.r.t. every Dense kernel, input layer first.

    One row per Dense layer: ``layer`` (1 = nearest the input; the last is the output layer),
    ``name`` (the variable path), ``norm``. Gradients of the mean cross-entropy on the batch, in
    inference mode unless ``training`` (BN then uses the batch's statistics, as in a fit).
    """
    return pd.DataFrame(_kernel_norms(model, autodiff.gradients(model, x, y, training=training)))


def _kernel_norms(model: keras.Model, grads: Mapping[str, np.ndarray]) -> list[dict]:
    """One row per Dense kernel, input first: ``layer``, ``name`` (its path), ``norm``."""
    kernels = [layer.kernel.path for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    return [
        {"layer": i + 1, "name": path, "norm": float(np.linalg.norm(grads[path]))}
        for i, path in enumerate(kernels)
    ]


def hidden_activations(model: keras.Model, x: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pre-activation, activation) of every hidden activation layer, in inference mode.

    Runs the model layer by layer; a hidden activation is the output of a layer in
    :data:`ACTIVATION_LAYERS`, its pre-activation that layer's input.
    """
    h = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    _, seen = autodiff.layer_pass(model, h, ACTIVATION_LAYERS)
    return [(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)) for a, b in seen]


class EpochProbe(keras.callbacks.Callback):
    """Probes the model being fit at the end of every epoch, on one fixed batch ``(x, y)``.

    ``self.frame`` gets one row per epoch and Dense layer (``grad_norm``, as
    :func:`layer_gradient_norms`) and ``self.activations`` one per epoch and hidden activation
    layer (``mean``, ``std``, as :func:`activation_stats`). Gradients and activations come from
    one pass (:func:`dnnbook.autodiff.probe_function`), compiled once per fit (TensorFlow) when
    the fit has at least ``compile_from`` epochs: a trace costs about as much as seven eager
    passes and saves about three quarters of each later one (``benchmarks/probe_overhead.py``).
    """

    def __init__(self, x: Any, y: Any, compile_from: int = 10) -> None:
        super().__init__()
        self.x, self.y, self.compile_from = x, y, compile_from
        self.frame, self.activations = pd.DataFrame(), pd.DataFrame()

    def on_train_begin(self, logs: dict | None = None) -> None:
        epochs = (self.params or {}).get("epochs") or 0
        self._probe = autodiff.probe_function(
            self.model, ACTIVATION_LAYERS, compiled=epochs >= self.compile_from
        )
        self._rows: list[dict] = []
        self._acts: list[dict] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        backend.sync(self.model)
        grads, seen = self._probe(self.x, self.y)
        self._rows += [
            {"epoch": epoch + 1, "layer": r["layer"], "grad_norm": r["norm"]}
            for r in _kernel_norms(self.model, grads)
        ]
        self._acts += [
            {"epoch": epoch + 1, "layer": i + 1, "mean": float(a.mean()), "std": float(a.std())}
            for i, (_, a) in enumerate(seen)
        ]
        self.frame, self.activations = pd.DataFrame(self._rows), pd.DataFrame(self._acts)


def activation_stats(model: keras.Model, x: Any) -> pd.DataFrame:
    """Mean and std of every hidden layer's activations over a batch (all units pooled)."""
    rows = [
        {"layer": i + 1, "mean": float(a.mean()), "std": float(a.std())}
        for i, (_, a) in enumerate(hidden_activations(model, x))
    ]
    return pd.DataFrame(rows)


def dead_units(model: keras.Model, x: Any) -> pd.DataFrame:
    """Per hidden layer, the fraction of units whose pre-activation is ≤ 0 on every example of ``x``.

    For ReLU such a unit outputs 0 and passes no gradient for the whole batch: it is dead.
    """
    rows = []
    for i, (z, _) in enumerate(hidden_activations(model, x)):
        never = np.all(z.reshape(len(z), -1) <= 0.0, axis=0)
        rows.append(
            {
                "layer": i + 1,
                "units": never.size,
                "dead": int(never.sum()),
                "dead_fraction": float(never.mean()),
            }
        )
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


def growth_per_layer(norms: pd.DataFrame) -> float:
    """Geometric mean factor by which the gradient norm grows per hidden layer on its way down:
    (first hidden / last hidden) ** (1 / (hidden layers − 1)); below 1 it vanishes, above 1 it
    explodes."""
    hidden = len(norms) - 1
    return float(first_to_last(norms) ** (1.0 / max(hidden - 1, 1)))


def probe_pairings(
    names: Sequence[str],
    x: Any,
    y: Any,
    *,
    depths: Sequence[int],
    seeds: Sequence[int],
    width: int,
    n_classes: int,
    training: bool = False,
    **kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gradient norms and activation statistics at initialization, per pairing, seed and depth.

    Returns two tidy frames with ``config``, ``seed``, ``depth`` and ``layer`` columns: the
    per-Dense-kernel gradient ``norm`` (:func:`layer_gradient_norms`) and, per hidden layer,
    the activations' ``mean`` and ``std`` and the share ``saturated`` of its pre-activations
    where the logistic slope σ′(z) is below 0.01. Every pairing gets the same seeds. Gradients
    are taken in training mode if ``training``; ``kwargs`` go to :func:`deep_mlp` (e.g.
    ``batch_norm``).
    """
    from dnnbook.experiments import concat
    from dnnbook.runtime import seed_everything

    grads, acts = [], []
    for name, seed, depth in itertools.product(names, seeds, depths):
        seed_everything(int(seed))
        model = deep_mlp(name, x.shape[1:], n_classes, depth=int(depth), width=width, **kwargs)
        keys = {"config": name, "seed": int(seed), "depth": int(depth)}
        grads.append(layer_gradient_norms(model, x, y, training).assign(**keys))
        acts.append(
            pd.DataFrame(
                [
                    {
                        **keys,
                        "layer": i + 1,
                        "mean": float(a.mean()),
                        "std": float(a.std()),
                        "saturated": float(np.mean(sigmoid_derivative(z) < 0.01)),
                    }
                    for i, (z, a) in enumerate(hidden_activations(model, x))
                ]
            )
        )
    return concat(grads, names), concat(acts, names)


class NeverPositive:
    """Tracks, per model, the hidden units whose pre-activation is never positive on ``x``.

    Called on a model (as an ``epoch_logs`` function of :func:`dnnbook.experiments.run`, at the
    end of every epoch) it returns the share of such units and keeps their mask: the first one
    seen and the latest. :meth:`woke` then counts the units never positive at the first call
    that are positive on some example of ``x`` at the latest.
    """

    def __init__(self, x: Any) -> None:
        self.x = x
        self.first: dict[int, np.ndarray] = {}
        self.latest: dict[int, np.ndarray] = {}

    def mask(self, model: keras.Model) -> np.ndarray:
        """One bool per hidden unit (all layers, input side first): never positive on ``x``."""
        return np.concatenate(
            [
                np.all(z.reshape(len(z), -1) <= 0.0, axis=0)
                for z, _ in hidden_activations(model, self.x)
            ]
        )

    def __call__(self, model: keras.Model) -> float:
        never = self.mask(model)
        self.first.setdefault(id(model), never)
        self.latest[id(model)] = never
        return float(never.mean())

    def woke(self, model: keras.Model) -> dict[str, float]:
        """``never`` (units never positive at the first call), ``woke`` (of those, active at
        the latest) and ``woke_share`` (woke / never; NaN when there were none)."""
        first, latest = self.first[id(model)], self.latest[id(model)]
        never, woke = int(first.sum()), int((first & ~latest).sum())
        return {"never": never, "woke": woke, "woke_share": woke / never if never else np.nan}


def float_pixels(splits: Any) -> Any:
    """``splits`` with raw uint8 pixel arrays as float32 (values 0-255 kept), labels untouched."""
    arrays = (
        splits.x_train,
        splits.y_train,
        splits.x_valid,
        splits.y_valid,
        splits.x_test,
        splits.y_test,
    )
    return type(splits)(
        *(a.astype("float32") if a.dtype == np.uint8 else a for a in arrays), splits.class_names
    )


def gradient_table(norms: pd.DataFrame) -> pd.DataFrame:
    """Per config (one run each): first / last hidden gradient norm, the growth per layer on the
    way down (:func:`growth_per_layer`) and the spread (max / min over the hidden layers)."""
    rows = {
        name: {
            "first / last hidden": first_to_last(g),
            "per layer": growth_per_layer(g),
            "max / min (hidden)": spread(g),
        }
        for name, g in norms.groupby("config", observed=True, sort=False)
    }
    return pd.DataFrame(rows).T


def ratio_by_depth(norms: pd.DataFrame) -> pd.DataFrame:
    """config × depth table of the first / last hidden gradient norm ratio (geometric mean over
    the seeds)."""
    rows = []
    for (name, depth), g in norms.groupby(["config", "depth"], observed=True, sort=False):
        ratios = [first_to_last(s.sort_values("layer")) for _, s in g.groupby("seed")]
        rows.append(
            {"config": name, "depth": depth, "ratio": float(np.exp(np.mean(np.log(ratios))))}
        )
    return pd.DataFrame(rows).pivot(index="config", columns="depth", values="ratio")


def unit_report(tracker: NeverPositive, y: Any) -> Callable[[keras.Model], pd.DataFrame]:
    """A ``probe`` for :func:`run_seeds`: per trained model one row with ``dead_fraction`` (units
    never positive on ``tracker.x``), ``max_grad``/``min_grad`` (the largest and smallest gradient
    norm of such a unit's incoming weights, :func:`dead_unit_gradients`), ``net_grad`` (all
    weights, :func:`total_gradient_norm`) and ``never``, ``woke``, ``woke_share``
    (:meth:`NeverPositive.woke`)."""

    def report(model: keras.Model) -> pd.DataFrame:
        grads = dead_unit_gradients(model, tracker.x, y)["grad_norm"]
        return pd.DataFrame(
            [
                {
                    "dead_fraction": float(tracker.mask(model).mean()),
                    "max_grad": grads.max(),
                    "min_grad": grads.min(),
                    "net_grad": total_gradient_norm(model, tracker.x, y),
                    **tracker.woke(model),
                }
            ]
        )

    return report


def format_unit_report(dead: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """:func:`unit_report` rows with each run's final validation accuracy, formatted for reading."""
    d = dead.merge(final[["config", "seed", "val_accuracy"]], on=["config", "seed"])
    table = pd.DataFrame(
        {
            "never positive": d["dead_fraction"].map("{:.1%}".format),
            "largest gradient, never-positive unit": d["max_grad"].map("{:.2g}".format),
            "never positive after epoch 1": d["never"],
            "woke up": d["woke"],
            "gradient norm, all weights": d["net_grad"].map("{:.2g}".format),
            "validation accuracy": d["val_accuracy"].map("{:.3f}".format),
        }
    )
    return table.set_index(pd.MultiIndex.from_frame(d[["config", "seed"]]))


def compiled(
    build: Callable[[], keras.Model], optimizer: Callable[[], Any]
) -> Callable[[], keras.Model]:
    """A factory of fresh models: ``build()`` compiled as a classifier with a fresh ``optimizer()``."""
    return lambda: models.compile_classifier(build(), optimizer())


def run_seeds(
    configs: Mapping[str, Callable[[], keras.Model]],
    data: Any,
    seeds: Sequence[int],
    *,
    epochs: int,
    batch_size: int = 32,
    probe: Callable[[keras.Model], pd.DataFrame] | None = None,
    epoch_logs: Mapping[str, Callable[[keras.Model], float]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Train every config for every seed with :func:`dnnbook.experiments.run` (in lockstep
    where it can).

    Returns the tidy history and, if ``probe`` is given, the concatenation of ``probe(model)``
    after training, one per run, with ``config`` and ``seed`` columns. ``epoch_logs`` goes to
    :func:`dnnbook.experiments.run` (a column per function, measured after every epoch).
    """
    from dnnbook import experiments

    kept: dict = {}
    history = experiments.run(
        configs,
        data,
        seeds,
        epochs=epochs,
        batch_size=batch_size,
        models=kept,
        epoch_logs=epoch_logs,
    )
    if probe is None:
        return history, None
    probed = pd.concat(
        [
            probe(kept[(name, int(seed))]).assign(config=name, seed=int(seed))
            for name in configs
            for seed in seeds
        ],
        ignore_index=True,
    )
    return history, probed.assign(
        config=pd.Categorical(probed["config"], categories=list(configs), ordered=True)
    )


def pairing_configs(
    names: Sequence[str],
    input_shape: Sequence[int],
    n_classes: int,
    *,
    depth: int,
    width: int = 100,
    optimizer: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> dict[str, Callable[[], keras.Model]]:
    """Factories of the compiled deep MLP with each named pairing, for :func:`run_seeds`.

    ``optimizer`` returns a fresh optimizer (default: plain SGD, learning rate 0.01).
    """
    optimizer = optimizer or (lambda: keras.optimizers.SGD(learning_rate=0.01))
    return {
        name: compiled(
            lambda name=name: deep_mlp(
                name, input_shape, n_classes, depth=depth, width=width, **kwargs
            ),
            optimizer,
        )
        for name in names
    }


def saturated_fraction(model: keras.Model, x: Any, threshold: float = 0.01) -> float:
    """Fraction of hidden pre-activations z where the logistic slope σ'(z) is below ``threshold``."""
    zs = [z.ravel() for z, _ in hidden_activations(model, x)]
    return float(np.mean(sigmoid_derivative(np.concatenate(zs)) < threshold))


def dead_unit_gradients(model: keras.Model, x: Any, y: Any) -> pd.DataFrame:
    """Each never-positive hidden unit on the batch (see :func:`dead_units`) with the norm of
    the loss gradient w.r.t. its incoming weights: exactly 0 for a dead ReLU, not for LeakyReLU."""
    grads = autodiff.gradients(model, x, y)
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
    return float(
        np.sqrt(sum(float(np.sum(np.square(g))) for g in autodiff.gradients(model, x, y).values()))
    )


def bn_parameters(model: keras.Model) -> pd.DataFrame:
    """Per BatchNormalization layer: inputs n, total, trainable (γ, β) and non-trainable
    (moving mean and variance) parameter counts, read from the model."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            count = lambda vs: int(sum(np.prod(v.shape) for v in vs))  # noqa: E731
            rows.append(
                {
                    "layer": layer.name,
                    "inputs": int(layer.gamma.shape[0]),
                    "parameters": layer.count_params(),
                    "trainable": count(layer.trainable_weights),
                    "non_trainable": count(layer.non_trainable_weights),
                }
            )
    return pd.DataFrame(rows).set_index("layer")


def batch_dependence(model: keras.Model, x: Any, size: int = 64) -> dict[str, float]:
    """How much example 0's output changes when the rest of its batch changes.

    Feeds ``x[:size]`` and ``[x[0]] + x[size:2*size-1]`` in inference mode (moving averages)
    and in training mode (batch statistics) and returns the largest change of example 0's
    predicted probabilities in each mode. The model's weights are restored afterwards.
    """
    x = np.asarray(x, dtype="float32")
    a, b = x[:size], np.concatenate([x[:1], x[size : 2 * size - 1]])
    saved = model.get_weights()
    out = {}
    for mode, training in (("inference", False), ("training", True)):
        pa = keras.ops.convert_to_numpy(model(a, training=training))[0]
        pb = keras.ops.convert_to_numpy(model(b, training=training))[0]
        out[mode] = float(np.abs(pa - pb).max())
    model.set_weights(saved)
    return out


# --- the conditions of the chapter's claims -----------------------------------------------------


def chance_level(y: Any) -> float:
    """The share of the most common class in ``y``: what predicting one class every time scores."""
    counts = np.bincount(np.asarray(y).astype(int))
    return float(counts.max() / counts.sum())


def chance_band(y: Any) -> float:
    """The accuracy a network that does not learn stays below: :func:`chance_level` plus three
    standard errors of an accuracy measured on ``len(y)`` examples (sqrt(p(1 − p) / n))."""
    p = chance_level(y)
    return p + 3.0 * float(np.sqrt(p * (1.0 - p) / len(y)))


def _per_seed(norms: pd.DataFrame, config: str, fn: Callable[[pd.DataFrame], float]) -> pd.Series:
    """``fn`` of each (seed, depth) run's per-layer norms of ``config``."""
    runs = norms[norms["config"] == config].groupby(["seed", "depth"], observed=True)
    return runs.apply(lambda g: fn(g.sort_values("layer")), include_groups=False)


def vanishes(norms: pd.DataFrame, config: str, below: float = 0.5) -> Check:
    """In every seed (and depth) of ``config`` the gradient norm shrinks by more than ``1/below``
    per hidden layer on its way down (:func:`growth_per_layer` < ``below``)."""
    g = _per_seed(norms, config, growth_per_layer)
    return Check(
        bool((g < below).all()),
        f"factor per layer {g.min():.3f} to {g.max():.3f} over {len(g)} seeds",
        below - float(g.max()),
    )


def within_order(norms: pd.DataFrame, config: str) -> Check:
    """In every seed of ``config`` the hidden layers' gradient norms lie within one order of
    magnitude (:func:`spread` < 10); margin in orders of magnitude."""
    s = _per_seed(norms, config, spread)
    return Check(
        bool((s < 10).all()),
        f"largest / smallest {s.min():.2f} to {s.max():.2f} over {len(s)} seeds",
        1.0 - float(np.log10(s.max())),
    )


def explodes_with_depth(norms: pd.DataFrame, config: str, reference: str) -> Check:
    """In every seed, ``config``'s first-to-last hidden gradient ratio grows by more than 10×
    from each depth to the next, while ``reference``'s stays below 10 at every depth. Margin in
    orders of magnitude (the smaller of the two)."""
    r = np.log10(_per_seed(norms, config, first_to_last).unstack("depth"))
    steps = r.diff(axis=1).iloc[:, 1:]
    ref = np.log10(_per_seed(norms, reference, first_to_last))
    depths = ", ".join(str(c) for c in r.columns)
    return Check(
        bool((steps > 1).all().all() and (ref < 1).all()),
        f"{config}: ratio 10^{r.min().min():.1f} to 10^{r.max().max():.1f} at depths "
        f"{depths}, growing ×10^{steps.min().min():.1f} or more per step; "
        f"{reference}: at most 10^{ref.max():.2f}",
        min(float(steps.min().min()) - 1.0, 1.0 - float(ref.max())),
    )


def self_normalizes(acts: pd.DataFrame, config: str) -> Check:
    """Every hidden layer of ``config`` (every seed) has |mean| < 0.2 and std in [0.8, 1.25]."""
    a = acts[acts["config"] == config]
    low, high, worst = a["std"].min(), a["std"].max(), a["mean"].abs().max()
    return Check(
        bool(worst < 0.2 and low >= 0.8 and high <= 1.25),
        f"|mean| at most {worst:.3f}, std {low:.3f} to {high:.3f} over {len(a)} layers",
        float(min(0.2 - worst, low - 0.8, 1.25 - high)),
    )


def saturates_more(acts: pd.DataFrame, a: str, b: str, by: float = 0.25) -> Check:
    """In every seed, ``a`` has a share of saturated units (σ′ < 0.01) at least ``by`` larger
    than ``b``; margin in shares."""
    share = acts.groupby(["config", "seed"], observed=True)["saturated"].mean().unstack("config")
    gap = share[a] - share[b]
    return Check(
        bool((gap >= by).all()),
        f"saturated: {share[a].min():.1%} to {share[a].max():.1%} with {a}, "
        f"{share[b].min():.1%} to {share[b].max():.1%} with {b} ({len(gap)} seeds)",
        float(gap.min() - by),
    )


def restores_flow(
    plain: pd.DataFrame, fixed: pd.DataFrame, config: str, threshold: float = 0.5
) -> Check:
    """In every seed, ``config``'s gradient shrinks by more than ``1/threshold`` per hidden layer
    in ``plain`` (:func:`growth_per_layer` below ``threshold``) and by less in ``fixed``
    (at least ``threshold``): both are :func:`probe_pairings` frames. Margin: the smaller
    distance of either side from ``threshold``."""
    before = _per_seed(plain, config, growth_per_layer)
    after = _per_seed(fixed, config, growth_per_layer)
    return Check(
        bool((before < threshold).all() and (after >= threshold).all()),
        f"factor per layer without {before.min():.3f} to {before.max():.3f}, with "
        f"{after.min():.3f} to {after.max():.3f} over {len(after)} seeds",
        float(min(threshold - before.max(), after.min() - threshold)),
    )


def stays_at_chance(history: pd.DataFrame, config: str, band: float) -> Check:
    """Every epoch of every seed of ``config`` has a validation accuracy below ``band``."""
    acc = history.loc[history["config"] == config, "val_accuracy"]
    return Check(
        bool((acc < band).all()),
        f"highest of {len(acc)} epochs {acc.max():.3f}, band {band:.3f}",
        band - float(acc.max()),
    )


def dies_more(dead: pd.DataFrame, a: str, b: str, times: float = 2.0) -> Check:
    """In every seed, the share of never-positive units of ``a`` is at least ``times`` that of
    ``b`` (``dead`` has ``config``, ``seed``, ``dead_fraction``); margin: the smallest ratio
    minus ``times``."""
    share = dead.pivot(index="seed", columns="config", values="dead_fraction")
    ratio = share[a] / share[b].where(share[b] > 0, np.nan)
    ratio = ratio.fillna(np.inf).where(share[a] > 0, 0.0)
    return Check(
        bool((ratio >= times).all()),
        f"never positive: {a} {share[a].min():.1%} to {share[a].max():.1%}, "
        f"{b} {share[b].min():.1%} to {share[b].max():.1%} ({len(share)} seeds)",
        float(ratio.min() - times),
    )


def wakes_more(units: pd.DataFrame, a: str, b: str) -> Check:
    """Of the units never positive after the first epoch, pooled over the seeds, a larger share
    is active at the end with ``a`` than with ``b``: the one-sided 95% lower bound of the
    difference of the two shares (Newcombe's score interval) lies above 0. ``units`` has
    ``config``, ``seed``, ``never`` and ``woke`` columns (:func:`unit_report`). Pooled because
    at full size a network may have only a handful of such units per seed. Nothing to check
    (None) when either network has none at all. Margin: that lower bound."""
    never = units.pivot(index="seed", columns="config", values="never")
    woke = units.pivot(index="seed", columns="config", values="woke")
    na, nb, wa, wb = (int(t[c].sum()) for t, c in ((never, a), (never, b), (woke, a), (woke, b)))
    counts = f"{a} {wa} of {na}, {b} {wb} of {nb}"
    if na == 0 or nb == 0:
        return Check(
            None, f"no never-positive units after epoch 1 in one network; woke up: {counts}"
        )
    diff = stats.proportion_diff(wa, na, wb, nb, level=0.90)  # its low end: one-sided 95%
    return Check(
        diff.low > 0,
        f"woke up (of never positive after epoch 1, {len(never)} seeds pooled): {counts}; "
        f"share {a} minus {b} {diff.mean:+.3f}, one-sided 95% lower bound {diff.low:+.3f}",
        diff.low,
    )


def diverges_without_clipping(
    history: pd.DataFrame, plain: str, clipped: str, band: float
) -> Check:
    """Every seed of ``plain`` ends diverged (NaN loss, or validation accuracy below ``band``),
    and ``clipped`` beats it: the 95% CI of the paired difference of the best epochs'
    validation accuracies lies above 0. Margin: the smaller of the CI's low end and the
    distance of ``plain``'s best non-NaN final accuracy below ``band``."""
    from dnnbook import experiments

    last = experiments.final(history).set_index(["config", "seed"])
    end = last.loc[plain]
    nan = end["loss"].isna()
    diverged = nan | (end["val_accuracy"] < band)
    best = experiments.per_run(history, "val_accuracy")["best"].unstack("config")
    win = experiments.paired_check(best, clipped, plain)
    finite = end.loc[~nan, "val_accuracy"]
    room = band - float(finite.max()) if len(finite) else np.inf
    return Check(
        bool(diverged.all() and win.holds),
        f"{plain}: {int(nan.sum())} of {len(end)} NaN, best final accuracy "
        f"{end['val_accuracy'].max():.3f} (band {band:.3f}); best epochs, {win.evidence}",
        float(min(room, win.margin)),
    )


def bn_cost_table(history: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per config: mean seconds per epoch, and the mean epochs and seconds to reach ``target``
    validation accuracy (:func:`dnnbook.experiments.epochs_to_reach`), rounded."""
    from dnnbook import experiments

    reach = (
        experiments.epochs_to_reach(history, target)
        .groupby("config", observed=True)[["epoch", "seconds"]]
        .mean()
    )
    reach.insert(0, "s / epoch", history.groupby("config", observed=True)["epoch_time"].mean())
    names = {
        "epoch": f"epochs to {target:.0%} (mean)",
        "seconds": f"seconds to {target:.0%} (mean)",
    }
    return reach.rename(columns=names).round(2)


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
    return plots.finish(fig, title, ax)


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
    return plots.finish(fig, title)


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
        row["global norm"] = float(
            np.sqrt(sum(float((g.astype("float64") ** 2).sum()) for g in out))
        )
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
