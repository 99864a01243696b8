"""Training throughput of the baseline MLP, the machine's matmul peak, and seeds in lockstep.

Prints figures; asserts nothing. Each fit's time is given whole and for its epochs after
the first, which leave out compiling (and, under JAX, most of the tracing).
Usage: python benchmarks/throughput.py [--seeds 5] [--epochs 5]
Run it on an otherwise idle machine: other processes make every figure worse.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

# dnnbook first: it sets the backends' options (TF_ENABLE_ONEDNN_OPTS=0, JAX's cache) as the
# book runs them, and most are read when Keras imports its backend
import dnnbook  # noqa: F401

# isort: split

import keras
import numpy as np

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
    peak_share, fit_s = {}, {}
    for name, df in runs.items():
        # a lockstep epoch's time is stored divided by K: one seed's rows hold the whole fit
        seconds = df["epoch_time"] * df["lockstep"]
        if name == "lockstep":
            seconds = seconds[df["seed"] == seeds[0]]
        fit_s[name] = float(seconds.sum())
        later = seconds[df.loc[seconds.index, "epoch"] > 1]
        for part, secs, epochs in (
            ("whole fit", fit_s[name], args.epochs),
            ("epochs 2+", later.sum(), args.epochs - 1),
        ):
            if not epochs:
                continue
            rate = args.n_train * epochs * args.seeds / secs
            flops = rate * TRAIN_FLOPS_PER_EXAMPLE
            peak_share[name, part] = flops / peak
            print(
                f"{name:>24}, {part}: {args.seeds} seeds × {epochs} epochs × {args.n_train} "
                f"examples in {secs:.2f} s: {rate:,.0f} examples/s, {flops / 1e9:.2f} GFLOP/s "
                f"= {flops / peak:.1%} of the matmul peak"
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
    ratio = walls["sequential"] / walls["lockstep"]
    share = peak_share["lockstep", "whole fit"]
    print(
        f"in one run: lockstep {ratio:.2f}× over sequential fits (wall; aim 4×), "
        f"{share:.1%} of the matmul peak in its whole fit (aim 20%)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
