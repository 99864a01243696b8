"""Stacked replicas: K copies of a plain MLP fused into one model with K-wide layers.

Where :func:`dnnbook.engine.lockstep.combine` puts K replicas side by side (K sets of small ops per
step), this rewrites them into one model whose every layer carries all K: a Dense layer holds a
``(K, in, out)`` kernel and does one batched matrix product, and per-feature layers (activations,
BatchNormalization, PReLU) act on the K replicas' features laid side by side, ``(batch, K·units)``.
Each replica's slice starts from that replica's weights and, since the loss is the sum of the
replicas' losses and the optimizers below update every weight on its own, it trains as a solo
run would (up to float rounding: a batched product adds in a different order than K small ones).
What cannot be stacked is refused by :func:`why_not`, and the caller falls back to side by side.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

from dnnbook.engine.backend import LoopedSteps
from dnnbook.models import fresh_optimizer

# optimizers whose update of a weight reads only that weight's gradient and state
ELEMENTWISE_OPTIMIZERS = (keras.optimizers.SGD, keras.optimizers.Adam, keras.optimizers.AdamW,
                          keras.optimizers.Nadam, keras.optimizers.RMSprop, keras.optimizers.Adagrad,
                          keras.optimizers.Adamax, keras.optimizers.Adadelta, keras.optimizers.Lion)
# activations that act on each feature on its own (softmax mixes the features of one replica)
ELEMENTWISE_ACTIVATIONS = {"linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "tanh",
                           "sigmoid", "hard_sigmoid", "swish", "silu", "softplus", "softsign", "mish",
                           "exponential", "celu"}
PER_FEATURE_LAYERS = (keras.layers.Activation, keras.layers.LeakyReLU, keras.layers.PReLU,
                      keras.layers.ELU, keras.layers.ReLU, keras.layers.BatchNormalization)
LOSSES = ("sparse_categorical_crossentropy",)
# weight penalties that are sums over the weights (so one replica's penalty is the sum over its slice)
PENALTIES = (keras.regularizers.L1, keras.regularizers.L2, keras.regularizers.L1L2)
# kernel constraints that act on each unit's incoming weights (an axis) or on each weight alone
AXIS_CONSTRAINTS = (keras.constraints.MaxNorm, keras.constraints.MinMaxNorm, keras.constraints.UnitNorm)
PENALTY = "penalty_in_loss"
METRICS = ("accuracy", "sparse_categorical_accuracy")


def _activation_name(activation) -> str:
    return activation if isinstance(activation, str) else getattr(activation, "__name__", repr(activation))


def _layer_problem(layer: keras.layers.Layer, first: bool, last: bool) -> str | None:
    """Why this layer cannot be stacked (None if it can)."""
    kind = type(layer).__name__
    if isinstance(layer, keras.layers.InputLayer):
        return None
    if isinstance(layer, keras.layers.Flatten):
        return None if first else "a Flatten layer after the first Dense layer"
    if isinstance(layer, keras.layers.Dense):
        act = _activation_name(layer.get_config()["activation"])
        if act == "softmax" and last:
            return None
        if act not in ELEMENTWISE_ACTIVATIONS:
            return f"Dense activation {act!r}"
        if layer.activity_regularizer:
            return "an activity regularizer"
        for reg in (layer.kernel_regularizer, layer.bias_regularizer):
            if reg is not None and type(reg) not in PENALTIES:
                return f"the regularizer {type(reg).__name__} (only L1, L2 and L1L2 are stacked)"
        kc, bc = layer.kernel_constraint, layer.bias_constraint
        if kc is not None and not isinstance(kc, (*AXIS_CONSTRAINTS, keras.constraints.NonNeg)):
            return f"the weight constraint {type(kc).__name__}"
        if bc is not None and not isinstance(bc, keras.constraints.NonNeg):
            return f"the bias constraint {type(bc).__name__} (it would act on all replicas' biases together)"
        return None
    extras = sorted(key for key, value in vars(layer).items() if value is not None
                    and (key.endswith("_regularizer") or key.endswith("_constraint")))
    if extras:  # a penalty or constraint on BN's or PReLU's weights
        return f"a {kind} layer with {', '.join(extras)}"
    if isinstance(layer, keras.layers.BatchNormalization):
        cfg = layer.get_config()
        if cfg["axis"] not in (-1, [-1]) or cfg.get("renorm") or cfg.get("synchronized"):
            return "a BatchNormalization layer that is not a plain per-feature one"
        return None
    if isinstance(layer, keras.layers.Activation):
        act = _activation_name(layer.get_config()["activation"])
        return None if act in ELEMENTWISE_ACTIVATIONS else f"activation {act!r}"
    if isinstance(layer, keras.layers.PReLU):
        return None if not layer.get_config().get("shared_axes") else "PReLU with shared axes"
    if isinstance(layer, PER_FEATURE_LAYERS):
        return None
    return f"a {kind} layer"


def why_not(model: keras.Model) -> str | None:
    """Why replicas of this compiled model cannot be stacked (None if they can)."""
    if not isinstance(model, keras.Sequential):
        return "only Sequential models are stacked"
    layers = model.layers
    dense = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense)]
    if not dense or dense[-1] != len(layers) - 1:
        return "the model does not end in a Dense layer"
    if len(model.inputs[0].shape) != 2 and not isinstance(layers[0], keras.layers.Flatten):
        return "inputs that are not flat and no leading Flatten"
    for i, layer in enumerate(layers):
        problem = _layer_problem(layer, first=i < dense[0], last=i == len(layers) - 1)
        if problem:
            return problem
        if i < dense[0] and not isinstance(layer, (keras.layers.Flatten, keras.layers.InputLayer)):
            return f"a {type(layer).__name__} layer before the first Dense layer"
    opt = model.optimizer
    if not isinstance(opt, ELEMENTWISE_OPTIMIZERS):
        return f"the {type(opt).__name__} optimizer"
    if getattr(opt, "clipnorm", None) or getattr(opt, "use_ema", False):
        return "clipnorm or EMA would act on all replicas' weights together"
    config = model.get_compile_config() or {}
    if config.get("loss") not in LOSSES:
        return f"the loss {config.get('loss')!r}"
    metrics = config.get("metrics") or []
    if any(m not in METRICS for m in metrics):
        return f"metrics other than accuracy ({metrics})"
    return None


class StackedDense(keras.layers.Layer):
    """K Dense layers as one: ``(batch, K·in)`` (or a shared ``(batch, in)``) to ``(batch, K·out)``.

    With ``shared_input`` the kernel is ``(in, K, out)`` and the step is one matrix product;
    otherwise it is ``(K, in, out)`` and the step one batched product. ``activation`` applies
    per replica (softmax included), and the last layer returns ``(batch, K, out)``. The
    replicas' weight penalties (:data:`PENALTIES`) are not layer losses: :meth:`penalties`
    gives each replica's, for :class:`Stacked` to add. A kernel constraint acts on each
    replica's slice (its axis moved to the stacked kernel's).
    """

    def __init__(self, k: int, units: int, activation: str = "linear", use_bias: bool = True,
                 shared_input: bool = False, last: bool = False, kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k, self.units, self.use_bias = k, units, use_bias
        self.activation = keras.activations.get(activation)
        self.shared_input, self.last = shared_input, last
        self.kernel_penalty = keras.regularizers.get(kernel_regularizer)
        self.bias_penalty = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = _stacked_constraint(keras.constraints.get(kernel_constraint), shared_input)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def build(self, input_shape) -> None:
        d_in = input_shape[-1] if self.shared_input else input_shape[-1] // self.k
        shape = (d_in, self.k, self.units) if self.shared_input else (self.k, d_in, self.units)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer="zeros",
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight(name="bias", shape=(self.k * self.units,), initializer="zeros",
                                    constraint=self.bias_constraint) if self.use_bias else None

    def penalties(self):
        """Each replica's weight penalty, a ``(K,)`` tensor (None without penalties)."""
        parts = []
        if self.kernel_penalty is not None:
            parts.append(_sum_penalty(self.kernel_penalty, self.kernel, 1 if self.shared_input else 0))
        if self.bias_penalty is not None and self.bias is not None:
            parts.append(_sum_penalty(self.bias_penalty, ops.reshape(self.bias, (self.k, self.units)), 0))
        return sum(parts[1:], parts[0]) if parts else None

    def call(self, x):
        if self.shared_input:
            y = ops.matmul(x, ops.reshape(self.kernel, (x.shape[-1], self.k * self.units)))
        else:
            y = ops.einsum("bki,kio->bko", ops.reshape(x, (-1, self.k, self.kernel.shape[1])), self.kernel)
            y = ops.reshape(y, (-1, self.k * self.units))
        if self.bias is not None:
            y = y + self.bias
        y = ops.reshape(y, (-1, self.k, self.units))
        y = self.activation(y)
        return y if self.last else ops.reshape(y, (-1, self.k * self.units))

    def set_from(self, replicas: Sequence[keras.layers.Dense]) -> None:
        """Copy the replicas' kernels and biases into the stacked weights."""
        axis = 1 if self.shared_input else 0
        self.kernel.assign(np.stack([ops.convert_to_numpy(r.kernel) for r in replicas], axis=axis))
        if self.bias is not None:
            self.bias.assign(np.concatenate([ops.convert_to_numpy(r.bias) for r in replicas]))

    def slices(self) -> list[list]:
        """Each replica's ``[kernel, bias]`` (numpy)."""
        kernel = ops.convert_to_numpy(self.kernel)
        out = []
        for i in range(self.k):
            w = [kernel[:, i] if self.shared_input else kernel[i]]
            if self.bias is not None:
                w.append(ops.convert_to_numpy(self.bias)[i * self.units:(i + 1) * self.units])
            out.append(w)
        return out


class StackedActivation(keras.layers.Layer):
    """Per-replica activation layers on ``(batch, K·units)``: ``runs`` lists ``(start, stop,
    layer)``, the weightless activation layer (ReLU, LeakyReLU, ELU, Activation...) of replicas
    ``start`` to ``stop - 1``, so that replicas of different configurations can be stacked."""

    def __init__(self, k: int, runs: Sequence[tuple[int, int, keras.layers.Layer]], **kwargs) -> None:
        super().__init__(**kwargs)
        self.k, self.runs = k, [(int(a), int(b), layer) for a, b, layer in runs]

    def call(self, x):
        y = ops.reshape(x, (-1, self.k, x.shape[-1] // self.k))
        y = ops.concatenate([layer(y[:, a:b]) for a, b, layer in self.runs], axis=1)
        return ops.reshape(y, (-1, x.shape[-1]))


ACTIVATION_LAYERS = (keras.layers.Activation, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.ReLU)
_COMPILE = ("loss", "metrics", "loss_weights", "weighted_metrics", "run_eagerly", "jit_compile")
_NOT_STRUCTURE = {"name", "kernel_initializer", "bias_initializer", "gamma_initializer", "beta_initializer",
                  "moving_mean_initializer", "moving_variance_initializer", "alpha_initializer", "seed", "dtype"}


def signature(model: keras.Model, *, own_rates: bool = False) -> tuple:
    """What replicas stacked together must share: every layer's settings but its initializers
    (activation layers only by position), the optimizer's and the compile settings; with
    ``own_rates``, the optimizer's learning rate is left out (for an optimizer whose replicas can
    each have their own, see :func:`dnnbook.engine.lockstep.own_rates`). Models of different
    configurations with equal signatures can be stacked into one model, each replica with its
    own activations (:class:`StackedActivation`), initial weights and, so, its own rate."""
    layers = tuple("activation" if isinstance(layer, ACTIVATION_LAYERS) else _settings(layer)
                   for layer in model.layers)
    compiled = model.get_compile_config() or {}
    optimizer = _settings(model.optimizer, omit=("learning_rate",) if own_rates else ())
    return layers, optimizer, _settings({k: compiled.get(k) for k in _COMPILE})


def _settings(obj, omit: Sequence[str] = ()) -> tuple:
    """A layer's or optimizer's kind and settings (a config dict's, given one), initializers,
    seeds, names and ``omit`` left out."""
    cfg = obj.get_config() if hasattr(obj, "get_config") else obj
    return type(obj).__name__, repr(sorted((k, v) for k, v in cfg.items() if k not in _NOT_STRUCTURE and k not in omit))


def _sum_penalty(reg, w, k_axis: int):
    """``reg`` (L1, L2 or L1L2) of each replica's slice of ``w`` along ``k_axis``: a ``(K,)`` tensor."""
    cfg = reg.get_config()
    axes = tuple(a for a in range(len(w.shape)) if a != k_axis)
    out = 0.0
    if cfg.get("l1"):
        out = out + cfg["l1"] * ops.sum(ops.abs(w), axis=axes)
    if cfg.get("l2"):
        out = out + cfg["l2"] * ops.sum(ops.square(w), axis=axes)
    return out


def _stacked_constraint(constraint, shared_input: bool):
    """A Dense kernel constraint rewritten for the stacked kernel: its axis (over the ``(in,
    out)`` kernel) moved to the same axis of ``(K, in, out)`` or, for a shared input, ``(in, K, out)``."""
    if not isinstance(constraint, AXIS_CONSTRAINTS):
        return constraint
    cfg = constraint.get_config()

    def move(axis: int) -> int:
        axis %= 2
        return (0, 2)[axis] if shared_input else axis + 1

    axis = cfg["axis"]
    cfg["axis"] = [move(a) for a in axis] if isinstance(axis, (list, tuple)) else move(axis)
    return constraint.__class__.from_config(cfg)


def penalty_tracker(i: int) -> keras.metrics.Mean:
    """The metric that reports replica ``i``'s weight penalty (added to its loss when read back)."""
    return keras.metrics.Mean(name=f"replica_{i}_{PENALTY}")


def track_penalties(trackers: Sequence[keras.metrics.Mean], penalties, x) -> None:
    """Update each replica's penalty tracker, weighted by the batch size as Keras weights its loss."""
    batch = ops.shape(keras.tree.flatten(x)[0])[0]
    for tracker, penalty in zip(trackers, penalties):
        tracker.update_state(penalty, sample_weight=batch)


class Stacked(LoopedSteps, keras.Model):
    """The functional model of :func:`stack`. Its ``compute_loss`` adds the replicas' weight
    penalties and tracks each one (``replica_{k}_penalty_in_loss``), so that a replica's
    reported loss is its cross-entropy plus its penalty, as a solo run reports it."""

    def __init__(self, *args, k: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._penalized = [layer for layer in self.layers if isinstance(layer, StackedDense)
                           and (layer.kernel_penalty or (layer.bias_penalty and layer.use_bias))]
        self.penalty_trackers = [penalty_tracker(i) for i in range(k)] if self._penalized else []

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        if not self._penalized:
            return loss
        per_replica = sum((layer.penalties() for layer in self._penalized[1:]), self._penalized[0].penalties())
        track_penalties(self.penalty_trackers, [per_replica[i] for i in range(len(self.penalty_trackers))], x)
        return loss + ops.sum(per_replica)


class ReplicaMean(keras.metrics.Metric):
    """A per-replica mean of a per-example value, reported as ``replica_{k}_{name}``."""

    def __init__(self, k: int, fn, name: str, **kwargs) -> None:
        super().__init__(name=f"replicas_{name}", **kwargs)
        self.k, self.fn, self.short = k, fn, name
        self.total = self.add_variable(shape=(k,), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        values = self.fn(_per_replica_labels(y_true, self.k), y_pred)  # (batch, K)
        self.total.assign(self.total + ops.sum(ops.cast(values, "float32"), axis=0))
        self.count.assign(self.count + ops.cast(ops.shape(values)[0], "float32"))

    def result(self) -> dict:
        mean = self.total / ops.maximum(self.count, 1.0)
        return {f"replica_{i}_{self.short}": mean[i] for i in range(self.k)}

    def reset_state(self) -> None:
        self.total.assign(ops.zeros((self.k,)))
        self.count.assign(0.0)


def _per_replica_labels(y_true, k: int):
    y = ops.reshape(y_true, (-1, 1))
    return ops.broadcast_to(y, (ops.shape(y)[0], k))


def _accuracy(y, y_pred):
    return ops.cast(ops.equal(ops.cast(y, "int32"), ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32")


def _cross_entropy(y, y_pred):
    return keras.losses.sparse_categorical_crossentropy(y, y_pred)


def stack(replicas: Sequence[keras.Model], steps_per_execution: int = 1,
          learning_rate: float | None = None) -> keras.Model:
    """One compiled model holding ``replicas`` stacked, starting from their weights, with a copy
    of the first replica's optimizer (at ``learning_rate``, if given)."""
    k = len(replicas)
    first = replicas[0]
    layers = first.layers
    first_dense = next(i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense))
    x = inputs = keras.Input(shape=first.inputs[0].shape[1:])
    built: list[tuple[int, keras.layers.Layer]] = []
    for i, layer in enumerate(layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Flatten):
            new = keras.layers.Flatten()
        elif isinstance(layer, keras.layers.Dense):
            cfg = layer.get_config()
            new = StackedDense(k, cfg["units"], activation=cfg["activation"], use_bias=cfg["use_bias"],
                               shared_input=i == first_dense, last=i == len(layers) - 1,
                               **{key: getattr(layer, key) for key in ("kernel_regularizer", "bias_regularizer",
                                                                        "kernel_constraint", "bias_constraint")})
        elif isinstance(layer, ACTIVATION_LAYERS) and any(
                _settings(r.layers[i]) != _settings(layer) for r in replicas):
            new = StackedActivation(k, _runs([r.layers[i] for r in replicas]), name=f"stacked_{layer.name}")
        else:
            new = layer.__class__.from_config(layer.get_config() | {"name": f"stacked_{layer.name}"})
        x = new(x)
        new.trainable = layer.trainable
        built.append((i, new))
    model = Stacked(inputs, x, name="stacked", k=k)
    for i, new in built:
        if isinstance(new, StackedDense):
            new.set_from([r.layers[i] for r in replicas])
        elif new.weights:
            per = [r.layers[i].get_weights() for r in replicas]
            new.set_weights([np.concatenate(ws, axis=-1) for ws in zip(*per)])
    model.stacked_layers = built  # (replica layer index, stacked layer), read back by :func:`unstack`

    def loss(y_true, y_pred):
        return ops.sum(_cross_entropy(_per_replica_labels(y_true, k), y_pred), axis=-1)

    opt = first.optimizer
    if keras.backend.backend() == "torch":
        steps_per_execution = 1
    model.compile(optimizer=fresh_optimizer(opt, learning_rate), loss=loss,
                  metrics=[ReplicaMean(k, _cross_entropy, "loss"), ReplicaMean(k, _accuracy, "accuracy")],
                  steps_per_execution=steps_per_execution)
    return model


def replica_specs(model: keras.Model) -> dict[int, tuple]:
    """Where each replica's part of every trainable variable of a :func:`stack` model sits, keyed
    by ``id(variable)`` (see :mod:`dnnbook.engine.replica_grads`): a stacked kernel along its K axis,
    every other weight (biases, BN, PReLU) as K equal blocks one after the other."""
    specs = {}
    for _, new in model.stacked_layers:
        for v in new.trainable_variables:
            specs[id(v)] = ("flat",)
        if isinstance(new, StackedDense):
            specs[id(new.kernel)] = ("axis", 1 if new.shared_input else 0)
    return specs


def _runs(layers: Sequence[keras.layers.Layer]) -> list[tuple[int, int, keras.layers.Layer]]:
    """Consecutive replicas with equal activation layers, as ``(start, stop, fresh layer)``."""
    runs: list = []
    for j, layer in enumerate(layers):
        if runs and _settings(layers[runs[-1][0]]) == _settings(layer):
            runs[-1][1] = j + 1
        else:
            runs.append([j, j + 1])
    return [(a, b, layers[a].__class__.from_config(layers[a].get_config() | {"name": f"stacked_{layers[a].name}_{a}"}))
            for a, b in runs]


def unstack(model: keras.Model, replicas: Sequence[keras.Model]) -> None:
    """Copy each replica's slice of the stacked weights back into ``replicas``."""
    k = len(replicas)
    for i, new in model.stacked_layers:
        if isinstance(new, StackedDense):
            for replica, w in zip(replicas, new.slices()):
                replica.layers[i].set_weights(w)
        elif new.weights:
            parts = [np.split(w, k, axis=-1) for w in new.get_weights()]
            for j, replica in enumerate(replicas):
                replica.layers[i].set_weights([p[j] for p in parts])
