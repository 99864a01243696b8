"""Cost of the gradient and activation probes relative to the training they observe.

Prints figures; asserts nothing. A 20 × 100 ReLU/He MLP is trained on 4,000 Fashion-MNIST images
(batch 32) for a few epochs; after every epoch the probes measure per-layer gradient norms and
activation statistics on a 256-image batch, as chapter 1 does at initialization.
"""
from __future__ import annotations

import argparse
import time

import dnnbook  # noqa: F401
import keras

from dnnbook import data, models, probes, runtime


class ProbeEveryEpoch(keras.callbacks.Callback):
    """Runs the probes at the end of each epoch and adds up their wall time."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.seconds = x, y, 0.0

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        probes.layer_gradient_norms(self.model, self.x, self.y)
        probes.activation_stats(self.model, self.x)
        self.seconds += time.perf_counter() - start


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

    timings = {}
    for name, callbacks in (("plain fit", []), ("fit + probes", None)):
        m = model()
        probe = ProbeEveryEpoch(d.x_valid[:256], d.y_valid[:256])
        start = time.perf_counter()
        m.fit(d.x_train, d.y_train, epochs=args.epochs, batch_size=32, verbose=0,
              callbacks=[probe] if callbacks is None else callbacks)
        timings[name] = (time.perf_counter() - start, probe.seconds)
    plain, (probed, in_probes) = timings["plain fit"][0], timings["fit + probes"]
    print(f"plain fit: {plain:.1f} s; fit with probes every epoch: {probed:.1f} s, "
          f"of which {in_probes:.2f} s in the probes")
    print(f"probe overhead: {in_probes / (probed - in_probes):.1%} of the training time it observes "
          f"({(probed - plain) / plain:+.1%} wall)")


if __name__ == "__main__":
    main()
