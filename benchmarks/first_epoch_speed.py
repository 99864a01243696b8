"""Chapter 3's "Adam is faster than plain SGD" at several base seeds, without the whole chapter.

Usage: python benchmarks/first_epoch_speed.py --seeds 1,2,3 [--profile full]

Per base seed, the chapter's steps for SGD and Adam only: its learning-rate finder (the
profile's finder seeds and steps), then both optimizers at their finder rates over the
chapter's seeds for one epoch, which is the first epoch of the chapter's runs (constant rates,
the same batches). Prints, per base seed, the finder's rates and two checks with their margins:
the claim as the chapter states it (the first epoch's training loss, SGD − Adam, 95% CI above
0) and validation accuracy after that epoch (Adam − SGD). The chapter's own code (its MLP, its
optimizers and its learning-rate finder) is loaded from the chapter by ``tests/chapter_code.py``.
Asserts nothing. KERAS_BACKEND picks the backend.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dnnbook  # noqa: E402
from dnnbook import checks, data, experiments  # noqa: E402
from tests import chapter_code  # noqa: E402

NAMES = ("SGD", "Adam")


def one_seed(profile: str, seed: int) -> str:
    """The line printed for base seed ``seed``."""
    start = time.perf_counter()
    cfg = dnnbook.profiles.get(profile)
    sec = cfg.section("optimizers")
    dnnbook.runtime.setup(seed, cfg.name)
    splits = data.load(
        "fashion_mnist",
        n_train=sec["n_train"],
        n_valid=sec["n_valid"],
        n_test=sec["n_test"],
        seed=seed,
    )

    ch = chapter_code.load("03")
    optimizer = {"SGD": ch.keras.optimizers.SGD, "Adam": ch.keras.optimizers.Adam}

    def make(name: str, rate: float):
        return ch.mlp(optimizer[name](learning_rate=rate), splits.input_shape, splits.n_classes)

    finder_seeds = cfg.seeds(seed, sec["finder_seeds"])
    chosen = {
        name: ch.find_rate(
            lambda name=name: make(name, 1e-3), splits, finder_seeds, sec["finder_steps"]
        )[2]
        for name in NAMES
    }
    configs = {name: (lambda name=name: make(name, chosen[name])) for name in NAMES}
    history = experiments.run(configs, splits, cfg.seeds(seed, sec["n_seeds"]), epochs=1)
    loss = experiments.per_seed(history, "loss")
    accuracy = experiments.per_seed(history, "val_accuracy")
    loss = checks.paired(loss["SGD"], loss["Adam"], label="loss, SGD − Adam")
    accuracy = checks.paired(accuracy["Adam"], accuracy["SGD"], label="Adam − SGD")
    rates = ", ".join(f"{name} {chosen[name]:.3g}" for name in NAMES)
    return (
        f"base seed {seed}: rates {rates} | training loss: {'holds' if loss.holds else 'FAILS'}"
        f" (margin {loss.margin:+.4f}; {loss.evidence}) | validation accuracy: "
        f"{'holds' if accuracy.holds else 'FAILS'} (margin {accuracy.margin:+.4f}; "
        f"{accuracy.evidence}) | {time.perf_counter() - start:.0f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", required=True, help="comma-separated base seeds, e.g. 1,2,3")
    p.add_argument("--profile", default="full", choices=("quick", "full"))
    args = p.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    for seed in seeds:
        print(one_seed(args.profile, seed), flush=True)


if __name__ == "__main__":
    main()
