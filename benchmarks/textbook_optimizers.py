"""The optimizer comparison of Géron's chapter 11 notebook, over seeds, beside its published run.

Géron's notebook (ageron/handson-ml3, ``11_training_deep_neural_networks.ipynb``) trains one
network per optimizer, once: Fashion-MNIST with the last 5,000 training images as the
validation set, pixels / 255, Flatten → 3 × Dense(100, ReLU, He normal) → Dense(10, softmax),
10 epochs of batches of 32, learning rate 0.001. This script trains the same network on the
same split with the same optimizers over several seeds and writes a table of the validation
accuracy after the last epoch, the published single run beside the mean ± std, 95% CI and range
over seeds, to ``results/textbook-optimizers.md`` (the page "The article, checked" shows it).

Usage: python benchmarks/textbook_optimizers.py [--seeds 5] [--epochs 10] [--out PATH]
About 10-15 minutes on a 2-core CPU (the seeds of each optimizer train in lockstep).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import dnnbook  # noqa: F401  (sets the backends' options as the book runs them)

# isort: split

import keras
import numpy as np

from dnnbook import data, experiments, runtime, stats

ROOT = Path(__file__).resolve().parents[1]
# The published run: the validation accuracy the notebook's log prints after epoch 10 of each
# optimizer (ageron/handson-ml3, 11_training_deep_neural_networks.ipynb, the version with
# outputs at commit 4d9eb70586bad625d18834fbb35034bfeb7d1df6, cells 46-63). Its "SGD" cell
# builds SGD(learning_rate=0.001, momentum=0.9), so its log is the momentum run's, line for
# line: plain SGD has no published number.
PUBLISHED: dict[str, float] = {
    "momentum": 0.8672,
    "Nesterov": 0.8708,
    "AdaGrad": 0.8424,
    "RMSProp": 0.8636,
    "Adam": 0.8696,
    "Adamax": 0.8780,
    "Nadam": 0.8740,
    "AdamW": 0.8702,
}
OPTIMIZERS = {
    "SGD": lambda: keras.optimizers.SGD(learning_rate=0.001),
    "momentum": lambda: keras.optimizers.SGD(learning_rate=0.001, momentum=0.9),
    "Nesterov": lambda: keras.optimizers.SGD(learning_rate=0.001, momentum=0.9, nesterov=True),
    "AdaGrad": lambda: keras.optimizers.Adagrad(learning_rate=0.001),
    "RMSProp": lambda: keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9),
    "Adam": lambda: keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999),
    "Adamax": lambda: keras.optimizers.Adamax(learning_rate=0.001, beta_1=0.9, beta_2=0.999),
    "Nadam": lambda: keras.optimizers.Nadam(learning_rate=0.001, beta_1=0.9, beta_2=0.999),
    "AdamW": lambda: keras.optimizers.AdamW(
        weight_decay=1e-5, learning_rate=0.001, beta_1=0.9, beta_2=0.999
    ),
}


def cpu_model() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def textbook_split() -> data.Splits:
    """Fashion-MNIST split as the notebook splits it: the last 5,000 training images validate."""
    folder = data.ensure_fashion_mnist(download=False)
    x, y, x_test, y_test = (
        data.read_idx(folder / data.FASHION_FILES[k])
        for k in ("x_train", "y_train", "x_test", "y_test")
    )
    scale = lambda a: a.astype("float32") / 255.0  # noqa: E731
    return data.Splits(
        scale(x[:-5000]),
        y[:-5000].astype("int64"),
        scale(x[-5000:]),
        y[-5000:].astype("int64"),
        scale(x_test),
        y_test.astype("int64"),
        data.FASHION_CLASSES,
    )


def build_model(optimizer: keras.optimizers.Optimizer) -> keras.Model:
    """The notebook's network, compiled with ``optimizer``."""
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def table(summary: dict[str, dict[str, float]], published: dict[str, float]) -> list[str]:
    """Markdown rows: the published run beside the seeds' mean ± std, CI and range."""
    rows = [
        "| optimizer | published run (one seed) | this book: mean ± std over seeds | 95% CI "
        "| range over seeds | published run inside the range |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        pub = published.get(name, float("nan"))
        inside = "—" if np.isnan(pub) else ("yes" if s["min"] <= pub <= s["max"] else "no")
        rows.append(
            f"| {name} | {'—' if np.isnan(pub) else f'{pub:.4f}'} | {s['mean']:.4f} ± "
            f"{s['std']:.4f} | [{s['low']:.4f}, {s['high']:.4f}] | {s['min']:.4f}–{s['max']:.4f} "
            f"| {inside} |"
        )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="seeds per optimizer (default 5)")
    p.add_argument("--base-seed", type=int, default=42)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "textbook-optimizers.md")
    args = p.parse_args()
    if args.seeds < 2 or args.epochs < 1:
        p.error("--seeds must be at least 2 and --epochs at least 1")
    runtime.setup(args.base_seed, "textbook")
    env = runtime.environment_line()
    splits = textbook_split()  # before any training: a missing data set stops here
    seeds = list(range(args.base_seed, args.base_seed + args.seeds))
    start = time.perf_counter()
    history = experiments.run(
        {name: (lambda make=make: build_model(make())) for name, make in OPTIMIZERS.items()},
        splits,
        seeds,
        epochs=args.epochs,
        batch_size=32,
    )
    seconds = time.perf_counter() - start
    acc = experiments.per_seed(history, "val_accuracy")
    summary = {}
    for name in OPTIMIZERS:
        v = acc[name].to_numpy()
        ci = stats.mean_ci(v)
        summary[name] = dict(
            mean=ci.mean, std=ci.std, low=ci.low, high=ci.high, min=v.min(), max=v.max()
        )
    command = "python benchmarks/textbook_optimizers.py " + " ".join(sys.argv[1:])
    lines = [
        "# The textbook's optimizer table, over seeds",
        "",
        f"{dt.date.today().isoformat()}, {cpu_model()} ({os.cpu_count()} cores), "
        f"`{command.strip()}`, {seconds:.0f} s; {env}.",
        "",
        f"Validation accuracy after epoch {args.epochs} of Géron's network on Géron's split "
        "(the last 5,000 training images), learning rate 0.001, batches of 32: the notebook's "
        f"published single run beside {args.seeds} seeds (base seeds "
        f"{seeds[0]}–{seeds[-1]}) of the same network and optimizer. The notebook's SGD "
        "cell builds SGD with momentum 0.9 and prints the momentum run's log, so plain SGD "
        "has no published number.",
        "",
        *table(summary, PUBLISHED),
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
