"""Label noise: a share of the training labels replaced by a different, random class."""

from __future__ import annotations

import dataclasses

import numpy as np

from dnnbook.data import Splits


def flip_labels(
    y: np.ndarray, fraction: float, n_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Give exactly ``round(fraction * len(y))`` labels a different, uniformly drawn class.

    Returns the noisy labels and the boolean mask of the flipped ones.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    y = np.asarray(y).copy()
    flipped = np.zeros(len(y), dtype=bool)
    flipped[rng.permutation(len(y))[: int(round(fraction * len(y)))]] = True
    shift = rng.integers(1, n_classes, int(flipped.sum()))
    y[flipped] = (y[flipped] + shift) % n_classes
    return y, flipped


def with_label_noise(splits: Splits, fraction: float, seed: int) -> Splits:
    """The same splits with ``fraction`` of the TRAINING labels flipped; validation and test
    labels stay clean, so they measure what the network learned about the images."""
    y, _ = flip_labels(splits.y_train, fraction, splits.n_classes, seed)
    return dataclasses.replace(splits, y_train=y)
