"""Cost of the gradient and activation probes relative to the training they observe.

Prints figures; asserts nothing. A 20 × 100 ReLU/He MLP is trained on 4,000 Fashion-MNIST images
(batch 32) for a few epochs; after every epoch the probes chapter 1 uses
(:func:`dnnbook.probes.kernel_gradient_norms`, :func:`dnnbook.probes.activation_stats`, eager,
one call per probe) measure per-layer gradient norms and activation statistics on a 256-image
batch.
"""

from __future__ import annotations

import argparse
import time

# dnnbook first: it sets the backends' options (TF_ENABLE_ONEDNN_OPTS=0, JAX's cache) as the
# book runs them, and most are read when Keras imports its backend
import dnnbook  # noqa: F401

# isort: split

import keras
import numpy as np

from dnnbook import data, models, probes, runtime


class OneOffProbes(keras.callbacks.Callback):
    """Runs the one-off probes at the end of each epoch."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def on_epoch_end(self, epoch, logs=None):
        probes.kernel_gradient_norms(self.model, self.x, self.y)
        probes.activation_stats(self.model, self.x)


class Timed(keras.callbacks.Callback):
    """Adds up the wall time ``inner`` spends in its epoch-end (and train-begin) hooks."""

    def __init__(self, inner: keras.callbacks.Callback):
        super().__init__()
        self.inner, self.seconds, self.calls = inner, 0.0, []

    def set_model(self, model):
        super().set_model(model)
        self.inner.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.inner.set_params(params)

    def on_train_begin(self, logs=None):
        start = time.perf_counter()
        self.inner.on_train_begin(logs)
        self.seconds += time.perf_counter() - start

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        self.inner.on_epoch_end(epoch, logs)
        self.calls.append(time.perf_counter() - start)
        self.seconds += self.calls[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args()
    runtime.setup(0, "benchmark")
    d = data.load("fashion_mnist", n_train=4000, n_valid=1000, n_test=1000, seed=0)

    def model():
        runtime.seed_everything(0)
        m = models.build_mlp(d.input_shape, d.n_classes, depth=20, width=100)
        return models.compile_classifier(m, keras.optimizers.SGD(0.01))

    x, y = d.x_valid[:256], d.y_valid[:256]
    timings = {}
    variants = (
        ("plain fit", None),
        ("one-off probes", OneOffProbes(x, y)),
    )
    for name, probe in variants:
        m = model()
        timed = Timed(probe) if probe else None
        start = time.perf_counter()
        m.fit(
            d.x_train,
            d.y_train,
            epochs=args.epochs,
            batch_size=32,
            verbose=0,
            callbacks=[timed] if timed else [],
        )
        timings[name] = (
            time.perf_counter() - start,
            timed.seconds if timed else 0.0,
            timed.calls if timed else [],
        )
    plain = timings["plain fit"][0]
    print(f"plain fit: {plain:.2f} s for {args.epochs} epochs")
    for name, _ in variants[1:]:
        wall, in_probes, calls = timings[name]
        epoch = (wall - in_probes) / args.epochs
        later = float(np.median(calls[1:])) if len(calls) > 1 else float("nan")
        print(
            f"{name:>20}: fit {wall:.2f} s, of which {in_probes:.2f} s in the probes: overhead "
            f"{in_probes / (wall - in_probes):.1%} of the training time it observes; first call "
            f"{calls[0] * 1e3:.0f} ms, later calls {later * 1e3:.0f} ms each = {later / epoch:.1%} of an epoch"
        )


if __name__ == "__main__":
    main()
