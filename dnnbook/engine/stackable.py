"""Which models and callbacks can train in lockstep, and which configurations as one model.

A stacked model (:mod:`dnnbook.engine.lockstep`) holds K replicas side by side; that is exact
only where nothing mixes the replicas: a Sequential MLP of Dense layers and layers that act on
each feature (or element) alone, weight penalties that are sums, constraints on each unit's
weights, an optimizer that updates each weight from its own gradient, and callbacks that act
only on what the replicas share. :func:`why_not` and :func:`problem` name the first thing that
breaks this (:func:`dnnbook.experiments.run` then trains seed after seed and prints it);
:func:`signature` says which configurations may share one stacked model.
"""

from __future__ import annotations

from typing import Sequence

import keras

from dnnbook.engine import replica_grads
from dnnbook.engine.callbacks import lockstep_safe
from dnnbook.models import ACTIVATION_LAYERS

# optimizers whose update of a weight reads only that weight's gradient and state
ELEMENTWISE_OPTIMIZERS = tuple(
    getattr(keras.optimizers, name)
    for name in "SGD Adam AdamW Nadam RMSprop Adagrad Adamax Adadelta Lion".split()
)
# activations that act on each feature on its own (softmax mixes the features of one replica)
ELEMENTWISE_ACTIVATIONS = frozenset(
    "linear relu relu6 leaky_relu elu selu gelu tanh sigmoid hard_sigmoid swish silu softplus"
    " softsign mish exponential celu".split()
)
# layers that act on each feature (or element) on its own, so also on K replicas side by side
PER_FEATURE_LAYERS = tuple(
    getattr(keras.layers, name)
    for name in "Activation LeakyReLU PReLU ELU ReLU BatchNormalization Dropout AlphaDropout"
    " GaussianDropout GaussianNoise".split()
)
# weight penalties that are sums over the weights (one replica's is the sum over its slice)
PENALTIES = (keras.regularizers.L1, keras.regularizers.L2, keras.regularizers.L1L2)
# kernel constraints that act on each unit's incoming weights (an axis)
AXIS_CONSTRAINTS = (
    keras.constraints.MaxNorm,
    keras.constraints.MinMaxNorm,
    keras.constraints.UnitNorm,
)


def _activation(layer: keras.layers.Layer) -> str:
    act = layer.get_config()["activation"]
    return act if isinstance(act, str) else getattr(act, "__name__", repr(act))


def _layer_problem(layer: keras.layers.Layer, last: bool) -> str | None:
    """Why this layer cannot be stacked (None if it can)."""
    config = layer.get_config()
    if isinstance(layer, keras.layers.Dense):
        if _activation(layer) not in ELEMENTWISE_ACTIVATIONS and not (
            last and _activation(layer) == "softmax"
        ):
            return f"Dense activation {_activation(layer)!r}"
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
    if not isinstance(layer, PER_FEATURE_LAYERS):
        return f"a {type(layer).__name__} layer"
    extras = sorted(
        key
        for key, value in vars(layer).items()
        if value is not None and (key.endswith("_regularizer") or key.endswith("_constraint"))
    )
    if extras:  # a penalty or constraint on BN's or PReLU's weights
        return f"a {type(layer).__name__} layer with {', '.join(extras)}"
    if (
        isinstance(layer, keras.layers.Activation)
        and _activation(layer) not in ELEMENTWISE_ACTIVATIONS
    ):
        return f"activation {_activation(layer)!r}"
    if (
        config.get("shared_axes")
        or config.get("noise_shape")
        or config.get("renorm")
        or config.get("synchronized")
    ):
        return f"a {type(layer).__name__} layer that does not act on each feature alone"
    if isinstance(layer, keras.layers.BatchNormalization) and config["axis"] not in (-1, [-1]):
        return "a BatchNormalization layer over another axis than the features"
    return None


def why_not(model: keras.Model) -> str | None:
    """Why the seeds of this compiled model cannot train in lockstep (None if they can)."""
    if not isinstance(model, keras.Sequential):
        return "only Sequential models are stacked"
    layers = model.layers
    dense = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense)]
    if not dense or dense[-1] != len(layers) - 1:
        return "the model does not end in a Dense layer"
    if len(model.inputs[0].shape) != 2 and not isinstance(layers[0], keras.layers.Flatten):
        return "inputs that are not flat and no leading Flatten"
    for i, layer in enumerate(layers):
        problem = (
            None
            if isinstance(layer, keras.layers.Flatten) and i < dense[0]
            else _layer_problem(layer, last=i == len(layers) - 1)
        )
        if problem:
            return problem
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return "the model is not compiled"
    if not isinstance(opt, ELEMENTWISE_OPTIMIZERS):
        return f"the {type(opt).__name__} optimizer"
    if opt.clipnorm or opt.clipvalue or opt.use_ema or opt.loss_scale_factor:
        return (
            "clipnorm, clipvalue, EMA or loss scaling would act on all replicas' weights together"
        )
    try:
        opt.get_config()
    except Exception:  # e.g. a learning rate given as a lambda
        return "an optimizer that cannot be copied from its config"
    config = model.get_compile_config() or {}
    if config.get("loss") != "sparse_categorical_crossentropy":
        return f"the loss {config.get('loss')!r}"
    if any(
        m not in ("accuracy", "sparse_categorical_accuracy") for m in config.get("metrics") or []
    ):
        return f"metrics other than accuracy ({config.get('metrics')})"
    if config.get("loss_weights") or config.get("weighted_metrics"):
        return "loss weights or weighted metrics"
    return None


def problem(
    model: keras.Model,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> str | None:
    """Why the seeds of ``model`` cannot train in lockstep with these callbacks (None if they
    can): :func:`why_not`, or a callback that acts on the one training loop (see
    :func:`dnnbook.engine.callbacks.lockstep_safe`)."""
    reason = why_not(model)
    if reason:
        return reason
    for c in callbacks:
        if isinstance(c, keras.callbacks.ReduceLROnPlateau):
            reason = replica_grads.plateau_problem(model.optimizer, c)
            if reason:
                return reason
        elif not lockstep_safe(c):
            return f"the {type(c).__name__} callback acts on the shared training loop"
    return None


def is_activation(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, ACTIVATION_LAYERS) and not isinstance(layer, keras.layers.PReLU)


def settings(obj) -> tuple:
    """A layer's or optimizer's kind and settings, names, seeds and initializers left out."""
    cfg = obj.get_config()
    return type(obj).__name__, repr(
        sorted(
            (key, value)
            for key, value in cfg.items()
            if key not in ("name", "seed", "dtype") and not key.endswith("_initializer")
        )
    )


def signature(model: keras.Model) -> tuple:
    """What models of several configurations must share to train as one stacked model: every
    layer's settings but its initializers (weightless activation layers only by position), the
    optimizer's and the compile settings. Their replicas differ in initial weights and activations."""
    layers = tuple(
        "activation" if is_activation(layer) else settings(layer) for layer in model.layers
    )
    compiled = model.get_compile_config() or {}
    return (
        layers,
        settings(model.optimizer),
        repr([compiled.get(key) for key in ("loss", "metrics", "jit_compile")]),
    )
