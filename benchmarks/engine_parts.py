"""What each optional part of the lockstep engine buys: the chapters' runs with it and without.

Usage: python benchmarks/engine_parts.py [--profile quick] [--seed 42] [--parts grouping,...]

Each part of :mod:`dnnbook.engine` beyond the stacked model itself lets more of the book's
configurations train in lockstep. Without the part, those configurations would train seed
after seed (or, for grouping, one model per configuration). Per part, this script runs the
chapter's own configuration both ways at the profile's sizes (the chapter's seeds, epochs and
data) and prints the two times. The parts:

- ``grouping``: configurations that differ only in activations and initializers as one model
  (``lockstep.StackedActivation``, ``stackable.signature``): chapter 1's trained pairings;
- ``clipping``: each replica clipped by its own global norm (``replica_grads.ReplicaUpdates``):
  chapter 1's ``global_clipnorm=1.0`` run;
- ``plateau``: ``ReduceLROnPlateau`` once per replica (``replica_grads.ReplicaPlateau``):
  chapter 3's performance schedule (momentum SGD at a fixed rate of 0.01 here, where the
  chapter takes its finder's pick);
- ``tiling``: per-feature layers before the first Dense layer (``lockstep.Tile``): chapter 1's
  BN on the raw pixels;
- ``penalties``: each replica's own L1/L2 penalty and max-norm constraint
  (``StackedDense.penalties``, ``Stacked.compute_loss``): chapter 4's penalty and max-norm
  settings on its noisy labels.

Asserts nothing. KERAS_BACKEND picks the backend. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# dnnbook first: it sets the backends' options as the book runs them
import dnnbook  # noqa: E402
from dnnbook import data, experiments, models  # noqa: E402

# isort: split

import keras  # noqa: E402

Configs = dict[str, Callable[[], keras.Model]]

# chapter 1's trained pairings (activation, initializer), as the chapter's deep_mlp builds them
PAIRINGS = {
    "sigmoid + N(0, 1)": ("sigmoid", lambda: keras.initializers.RandomNormal(stddev=1.0)),
    "sigmoid + Glorot": ("sigmoid", lambda: "glorot_uniform"),
    "tanh + Glorot": ("tanh", lambda: "glorot_uniform"),
    "ReLU + Glorot": ("relu", lambda: "glorot_uniform"),
    "ReLU + He": ("relu", lambda: "he_normal"),
    "LeakyReLU + He": ("leaky_relu", lambda: "he_normal"),
    "ELU + He": ("elu", lambda: "he_normal"),
    "SELU + LeCun": ("selu", lambda: "lecun_normal"),
    "GELU + He": ("gelu", lambda: "he_normal"),
}


def mlp(splits, optimizer: Callable[[], object], pairing: str, **kw) -> Callable[[], keras.Model]:
    """A factory of chapter 1's compiled MLP with one pairing (``kw`` to ``build_mlp``)."""
    activation, initializer = PAIRINGS[pairing]

    def make() -> keras.Model:
        m = models.build_mlp(
            splits.input_shape,
            splits.n_classes,
            activation=activation,
            initializer=initializer(),
            **kw,
        )
        return models.compile_classifier(m, optimizer())

    return make


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def section_data(profile: str, seed: int, section: str, **load):
    """A chapter's profile, its section and its data split as the chapter loads it: the
    section's ``n_train``, ``n_valid`` and ``n_test``, unless ``load`` says otherwise."""
    cfg = dnnbook.profiles.get(profile)
    sec = cfg.section(section)
    sizes = {key: sec[key] for key in ("n_train", "n_valid", "n_test") if key in sec}
    return cfg, sec, data.load("fashion_mnist", seed=seed, **(sizes | load))


def gradients_setup(profile: str, seed: int, raw: bool = False):
    """Chapter 1's profile, section and data: standardized, or raw pixels as floats."""
    cfg, sec, splits = section_data(profile, seed, "gradients", n_test=100, raw=raw)
    if raw:
        x = {k: getattr(splits, k).astype("float32") for k in ("x_train", "x_valid", "x_test")}
        return cfg, sec, dataclasses.replace(splits, **x)
    return cfg, sec, data.standardize(splits)


def grouping(profile: str, seed: int) -> tuple[float, float, str]:
    cfg, sec, splits = gradients_setup(profile, seed)
    sgd = functools.partial(keras.optimizers.SGD, learning_rate=sec["learning_rate"])
    shape = dict(depth=sec["depth"], width=sec["width"])
    configs = {name: mlp(splits, sgd, name, **shape) for name in PAIRINGS}
    seeds = cfg.seeds(seed, sec["n_seeds"])

    def together() -> None:
        experiments.run(configs, splits, seeds, epochs=sec["epochs"])

    def apart() -> None:
        for name, make in configs.items():
            experiments.run({name: make}, splits, seeds, epochs=sec["epochs"])

    what = (
        f"{len(configs)} configurations × {len(seeds)} seeds, one model; else one per configuration"
    )
    return timed(together), timed(apart), what


def lockstep_or_not(
    configs: Configs, splits, seeds, epochs: int, callbacks=None, batch_size: int = 32
) -> tuple[float, float, str]:
    """Seconds of ``experiments.run`` as it trains (in lockstep where it can), then seed after
    seed, and what ran."""

    def run() -> None:
        experiments.run(
            configs, splits, seeds, epochs=epochs, callbacks=callbacks, batch_size=batch_size
        )

    def seed_after_seed() -> None:
        with experiments.seed_after_seed():
            run()

    runs = f"{len(configs)} configurations × " if len(configs) > 1 else ""
    return (
        timed(run),
        timed(seed_after_seed),
        f"{runs}{len(seeds)} seeds in lockstep; else seed after seed",
    )


def clipping(profile: str, seed: int) -> tuple[float, float, str]:
    cfg, sec, splits = gradients_setup(profile, seed)
    sgd = functools.partial(
        keras.optimizers.SGD, learning_rate=sec["clip_learning_rate"], global_clipnorm=1.0
    )
    net = mlp(splits, sgd, "ReLU + He", depth=sec["clip_depth"], width=sec["width"])
    configs = {"SGD, global_clipnorm=1.0": net}
    return lockstep_or_not(configs, splits, cfg.seeds(seed), sec["epochs"])


def plateau(profile: str, seed: int) -> tuple[float, float, str]:
    cfg, sec, splits = section_data(profile, seed, "optimizers")

    def make() -> keras.Model:
        mlp = models.build_mlp(splits.input_shape, splits.n_classes)  # chapter 3's MLP
        return models.compile_classifier(mlp, keras.optimizers.SGD(0.01, momentum=0.9))

    def callbacks() -> list:
        return [keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1)]

    seeds = cfg.seeds(seed, sec["n_seeds"])
    return lockstep_or_not({"performance": make}, splits, seeds, sec["epochs"], callbacks)


def tiling(profile: str, seed: int) -> tuple[float, float, str]:
    cfg, sec, splits = gradients_setup(profile, seed, raw=True)
    sgd = functools.partial(keras.optimizers.SGD, learning_rate=sec["learning_rate"])
    net = mlp(splits, sgd, "ReLU + He", depth=sec["bn_depth"], input_batch_norm=True)
    configs = {"BN first layer (raw pixels)": net}
    return lockstep_or_not(configs, splits, cfg.seeds(seed), sec["epochs"])


def penalties(profile: str, seed: int) -> tuple[float, float, str]:
    from dnnbook.noisy_labels import with_label_noise

    cfg, sec, clean = section_data(profile, seed, "regularization")
    noisy = with_label_noise(clean, sec["noise"], seed)

    def mlp(**dense_kw) -> keras.Model:  # chapter 4's network: its builder lives in the chapter
        model = models.build_mlp(
            noisy.input_shape, 10, depth=sec["depth"], width=sec["width"], **dense_kw
        )
        return models.compile_classifier(model, keras.optimizers.Adam(learning_rate=2e-3))

    l1, l2 = keras.regularizers.l1(sec["l1"]), keras.regularizers.l2(sec["l2"])
    configs = {
        "l2": functools.partial(mlp, kernel_regularizer=l2),
        "l1": functools.partial(mlp, kernel_regularizer=l1),
    }
    for r in sec["max_norms"]:
        bound = keras.constraints.MaxNorm(r, axis=0)
        configs[f"max-norm {r:g}"] = functools.partial(mlp, kernel_constraint=bound)
    seeds = cfg.seeds(seed, sec["n_seeds"])
    return lockstep_or_not(configs, noisy, seeds, sec["epochs"], batch_size=sec["batch_size"])


PARTS = {
    "grouping": grouping,
    "clipping": clipping,
    "plateau": plateau,
    "tiling": tiling,
    "penalties": penalties,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick", choices=("quick", "full"))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    args = p.parse_args()
    parts = args.parts.split(",")
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        p.error(f"unknown parts {', '.join(unknown)}; parts: {', '.join(PARTS)}")
    dnnbook.runtime.setup(args.seed, args.profile)  # prints backend, versions, profile, seed
    for part in parts:
        with_part, without, what = PARTS[part](args.profile, args.seed)
        print(
            f"{part}: with it {with_part:.1f} s, without it {without:.1f} s "
            f"(saves {without - with_part:.1f} s; {what})",
            flush=True,
        )


if __name__ == "__main__":
    main()
