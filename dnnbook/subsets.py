"""Sub-tasks of a data set: the A/B split of transfer learning and few-label subsets.

Training images always come from the training split, validation and test images from their
own splits: a subset never trains on an image it is evaluated on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dnnbook.data import Splits


@dataclass(frozen=True)
class ABSplit:
    """Task A (all classes but ``b_classes``, relabelled 0..k-1) and task B (``b_classes``
    relabelled 0, 1, ...)."""

    a: Splits
    b: Splits
    a_classes: tuple[int, ...]
    b_classes: tuple[int, ...]


def _keep(x: np.ndarray, y: np.ndarray, classes: Sequence[int]) -> list[np.ndarray]:
    keep = np.isin(y, classes)
    lookup = np.full(int(max(y.max(), max(classes))) + 1, -1, dtype=np.int64)
    lookup[list(classes)] = np.arange(len(classes))
    return [x[keep], lookup[y[keep]]]


def split_ab(
    splits: Splits, *, b_classes: Sequence[int] = (0, 2), n_b_train: int, seed: int
) -> ABSplit:
    """Task A keeps every image of the classes not in ``b_classes``; task B keeps the
    ``b_classes`` images of the validation and test splits but only ``n_b_train`` training
    images, drawn with ``seed`` (each seed its own small labelled set)."""
    b_classes = tuple(int(c) for c in b_classes)
    a_classes = tuple(c for c in range(splits.n_classes) if c not in b_classes)
    parts_a: list[np.ndarray] = []
    parts_b: list[np.ndarray] = []
    for x, y in (
        (splits.x_train, splits.y_train),
        (splits.x_valid, splits.y_valid),
        (splits.x_test, splits.y_test),
    ):
        parts_a += _keep(x, y, a_classes)
        parts_b += _keep(x, y, b_classes)
    n_avail = len(parts_b[0])
    if n_b_train > n_avail:
        raise ValueError(
            f"n_b_train={n_b_train} but the training split holds only {n_avail} task-B images"
        )
    pick = np.sort(np.random.default_rng(seed).choice(n_avail, size=n_b_train, replace=False))
    parts_b[0], parts_b[1] = parts_b[0][pick], parts_b[1][pick]
    names = splits.class_names
    return ABSplit(
        Splits(*parts_a, tuple(names[c] for c in a_classes)),
        Splits(*parts_b, tuple(names[c] for c in b_classes)),
        a_classes,
        b_classes,
    )


def few_labels(data: Splits, n_labels: int, seed: int) -> Splits:
    """``data`` with only ``n_labels`` training images (drawn with ``seed``) kept labelled;
    the validation and test splits unchanged."""
    if n_labels > len(data.x_train):
        raise ValueError(f"n_labels={n_labels} exceeds the {len(data.x_train)} training images")
    pick = np.sort(np.random.default_rng(seed).choice(len(data.x_train), n_labels, replace=False))
    return dataclasses.replace(data, x_train=data.x_train[pick], y_train=data.y_train[pick])
