"""Training throughput of the baseline MLP, the machine's matmul peak, and seeds in lockstep.

Prints figures; asserts nothing. Usage: python benchmarks/throughput.py [--seeds 5] [--epochs 5]
Run it on an otherwise idle machine: other processes make every figure worse.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import keras
import numpy as np

import dnnbook  # noqa: F401  (quiets backend logs before Keras is imported)
from dnnbook import data, experiments, models, runtime
from dnnbook.engine import backend

# multiply-adds of one forward pass of the baseline (784-100-100-100-10); training costs about
# 3 forward passes (forward, backward to activations, backward to weights), 2 FLOPs per multiply-add
BASELINE_MACS = 784 * 100 + 100 * 100 * 2 + 100 * 10
TRAIN_FLOPS_PER_EXAMPLE = 3 * 2 * BASELINE_MACS


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large float32 matrix product through the Keras backend (best of ``repeats``)."""
    a = keras.ops.convert_to_tensor(np.random.rand(n, n).astype("float32"))
    b = keras.ops.convert_to_tensor(np.random.rand(n, n).astype("float32"))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, b))  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--n-train", type=int, default=5000)
    args = p.parse_args()
    runtime.setup(0, "benchmark")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    d = data.load("fashion_mnist", n_train=args.n_train, n_valid=2000, n_test=2000, seed=0)
    peak = matmul_peak()
    print(f"matmul peak (2048², float32): {peak / 1e9:.1f} GFLOP/s")

    spe = backend.default_steps_per_execution()  # lockstep's steps per call
    make = lambda **kw: lambda: models.baseline(d.input_shape, d.n_classes, **kw)  # noqa: E731
    seeds = list(range(args.seeds))
    runs, walls = {}, {}
    # plain fits (one step per call, Keras's default), then the same with lockstep's steps per
    # call, so that the lockstep speed-up can be told apart from that of fewer calls
    same = f"sequential, {spe} steps/call"
    for name, factory, together in (
        ("sequential", make(), False),
        (same, make(steps_per_execution=spe), False),
        ("lockstep", make(), True),
    ):
        start = time.perf_counter()
        with contextlib.nullcontext() if together else experiments.seed_after_seed():
            runs[name] = experiments.run({"baseline": factory}, d, seeds, epochs=args.epochs)
        walls[name] = time.perf_counter() - start
    examples = args.n_train * args.epochs * args.seeds
    fit_s = {
        name: (df["epoch_time"] * df["lockstep"]).groupby(df["seed"]).sum().iloc[0]
        if name == "lockstep"
        else df["epoch_time"].sum()
        for name, df in runs.items()
    }
    for name in runs:
        rate = examples / fit_s[name]
        flops = rate * TRAIN_FLOPS_PER_EXAMPLE
        print(
            f"{name:>24}: {args.seeds} seeds × {args.epochs} epochs × {args.n_train} examples in "
            f"{walls[name]:.1f} s wall ({fit_s[name]:.1f} s in fit): {rate:,.0f} examples/s, "
            f"{flops / 1e9:.2f} GFLOP/s = {flops / peak:.1%} of the matmul peak"
        )
    cols = ["loss", "val_loss", "val_accuracy", "test_accuracy"]
    seq = runs["sequential"]
    for name in (same, "lockstep"):
        gap = float(np.abs(seq[cols].to_numpy() - runs[name][cols].to_numpy()).max())
        print(
            f"{name} speed-up over {args.seeds} sequential fits: "
            f"{walls['sequential'] / walls[name]:.2f}× wall "
            f"({fit_s['sequential'] / fit_s[name]:.2f}× in fit); largest metric difference: {gap:.2e}"
        )
    print(
        f"lockstep speed-up over {args.seeds} sequential fits of {spe} steps per call: "
        f"{walls[same] / walls['lockstep']:.2f}× wall ({fit_s[same] / fit_s['lockstep']:.2f}× in fit)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
