"""Run-size profiles as data: ``quick`` (CI on a 2-core CPU) and ``full`` (a GPU).

``auto`` resolves to ``full`` when a GPU is visible, else ``quick``. Chapter-specific
settings live in one section per chapter (``cfg.section("gradients")``), so a chapter's
notebook never hard-codes a size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

CHOICES = ("quick", "full", "auto")


@dataclass(frozen=True)
class Profile:
    """Sizes for one profile. Common fields first; per-chapter sections in ``sections``."""

    name: str
    n_train: int  # Fashion-MNIST training images used (validation is split off the rest)
    n_valid: int  # validation images, split from the training set
    n_test: int  # test images (never used to choose anything)
    epochs: int  # epochs for the baseline-sized runs
    n_seeds: int  # seeds per comparison
    batch_size: int = 32
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def seeds(self, base: int, n: int | None = None) -> list[int]:
        """The seeds of a comparison: ``base, base+1, ...``, ``n`` of them (default ``n_seeds``;
        a chapter section that needs more or fewer gives its own)."""
        return [int(base) + i for i in range(self.n_seeds if n is None else int(n))]

    def data_sizes(self) -> dict[str, int]:
        """``n_train``, ``n_valid``, ``n_test`` as keyword arguments for :func:`dnnbook.data.load`."""
        return {"n_train": self.n_train, "n_valid": self.n_valid, "n_test": self.n_test}

    def section(self, chapter: str) -> Mapping[str, Any]:
        """The settings of one chapter, e.g. ``cfg.section("gradients")["depth"]``."""
        try:
            return self.sections[chapter]
        except KeyError:
            raise KeyError(
                f"profile {self.name!r} has no section {chapter!r}; "
                f"sections: {', '.join(sorted(self.sections))}"
            ) from None


# --- the sizes, one row per setting: (quick, full) -----------------------------------------
PROFILE_NAMES = ("quick", "full")
# the sizes every chapter shares (batch size: 32 in both)
_SHARED: dict[str, tuple[Any, Any]] = {
    "n_train": (5000, 55000),
    "n_valid": (2000, 5000),
    "n_test": (2000, 10000),
    "epochs": (10, 30),
    "n_seeds": (3, 5),
}
# one section per chapter; a row "group.key" is ``section["group"]["key"]``
_CHAPTERS: dict[str, dict[str, tuple[Any, Any]]] = {
    # chapter 0 (five seeds: the gap over softmax regression is a point or two)
    "baseline": {"n_seeds": (5, 5)},
    "gradients": {
        # the pairings' training: with 3 seeds one that learns slowly widens a 95% CI past 0
        "n_seeds": (5, 5),
        "depth": (20, 50),
        "width": (100, 100),
        "probe_batch": (256, 256),
        "n_train": (1000, 55000),
        "n_valid": (1000, 5000),
        "epochs": (3, 10),
        "learning_rate": (0.01, 0.01),
        "dying_depth": (5, 5),
        "dying_learning_rate": (0.01, 0.01),
        # per-network shares of woken units, paired by seed: 3 seeds leave a t-bound wide
        "dying_seeds": (8, 8),
        "bn_depth": (10, 20),
        "clip_depth": (5, 5),
        "clip_learning_rate": (1.0, 1.0),
        "explode_depths": ((5, 10, 20), (5, 10, 20, 50)),
    },
    "pretraining": {
        # task B: paired differences vary by about 0.7 points from seed to seed; 10 seeds put
        # the claims' one-sided bounds about half a point from the mean (5: nearly a point)
        "n_seeds": (10, 20),
        "n_b_train": (200, 200),
        "a_epochs": (5, 20),
        "b_frozen_epochs": (4, 5),
        "b_tuned_epochs": (8, 15),
        "pretext_epochs": (8, 20),
        "gan_epochs": (5, 30),
        "n_labels": (500, 500),
        # the few-label comparison and the probes: now and then one seed ends several points
        # low (or high) from a pretrained start; 10 seeds keep one such seed from deciding
        "few_seeds": (10, 20),
        "few_epochs": (10, 20),
    },
    "optimizers": {
        "n_train": (2000, 55000),
        "n_valid": (1000, 5000),
        "n_test": (1000, 10000),
        "epochs": (3, 20),
        "finder_steps": (120, 500),
        "finder_seeds": (3, 3),  # the finder's loss curve averaged over 3 runs: one is noisy
        # paired differences of a point or two need narrow intervals: 10 seeds (lockstep)
        "n_seeds": (10, 5),
        # ReduceLROnPlateau decides once per epoch: it needs more than 3 epochs to act
        "plateau_epochs": (10, 20),
        # its gain at full size is under a point, with a seed-to-seed spread of about 0.7:
        # 10 seeds put the one-sided bound about a third of a point below the mean
        "plateau_seeds": (10, 10),
    },
    # Adam's learning rate, 2e-3, is written in the chapter's builder
    "regularization": {
        "n_train": (1500, 5000),
        "n_valid": (2000, 5000),
        "n_test": (2000, 10000),
        # its CIs compare small gaps and costs: dropout 0.5 changes the quick test accuracy
        # by about −1 point with a seed-to-seed spread of about 1.3, and over 5 seeds the
        # one-sided bound lies 1.2 points below the mean (10 seeds: 0.75); at full size MC
        # dropout's changes of the test NLL and ECE are a few thousandths to 0.02
        "n_seeds": (10, 10),
        "noise": (0.1, 0.1),
        "depth": (2, 2),
        "width": (256, 256),
        "epochs": (15, 50),
        "batch_size": (64, 64),
        "l1": (1e-4, 1e-4),
        "l2": (1e-3, 1e-3),
        "dropout_rates": ((0.2, 0.5), (0.1, 0.2, 0.3, 0.5)),
        "max_norms": ((0.5, 1.0, 2.0), (0.5, 1.0, 2.0)),  # three active bounds: their order
        "mc_samples": (30, 100),
        # the tiny networks vary more between seeds than the wide one: 10 seeds (cheap)
        "underfit.depth": (1, 1),
        "underfit.width": (8, 8),
        "underfit.dropout": (0.5, 0.5),
        "underfit.n_seeds": (10, 10),
        "unstable.depth": (4, 4),
        "unstable.learning_rate": (0.3, 0.3),
        "unstable.momentum": (0.9, 0.9),
        "unstable.epochs": (4, 10),
        "unstable.max_norm": (1.0, 1.0),
        "unstable.n_seeds": (8, 8),
    },
}


def _column(rows: Mapping[str, tuple[Any, Any]], profile: str) -> Mapping[str, Any]:
    """One profile's values of ``rows``, "group.key" rows nested as ``{"group": {"key": v}}``."""
    out: dict[str, Any] = {}
    for key, pair in rows.items():
        group, _, name = key.rpartition(".")
        (out.setdefault(group, {}) if group else out)[name] = pair[PROFILE_NAMES.index(profile)]
    return MappingProxyType(
        {k: MappingProxyType(v) if isinstance(v, dict) else v for k, v in out.items()}
    )


_PROFILES = {
    name: Profile(
        name,
        **_column(_SHARED, name),
        sections=MappingProxyType({ch: _column(rows, name) for ch, rows in _CHAPTERS.items()}),
    )
    for name in PROFILE_NAMES
}


class UnknownProfileError(ValueError):
    """Raised for a profile name that is not one of :data:`CHOICES`."""


def check_name(name: str) -> str:
    """Return ``name`` if it is a known profile name, else raise a one-line error."""
    if name not in CHOICES:
        raise UnknownProfileError(f"unknown profile {name!r}; choose one of: {', '.join(CHOICES)}")
    return name


def resolve(name: str) -> str:
    """Map ``auto`` to ``full`` (GPU visible) or ``quick``; check other names."""
    check_name(name)
    if name != "auto":
        return name
    from dnnbook.runtime import gpu_names

    return "full" if gpu_names() else "quick"


def sizes(chapter: str | None = None, current: str | None = None) -> "Any":
    """A table of what a chapter runs with under both profiles: the sizes every chapter
    shares, then its own section's rows (a section's row replaces a shared one of the same
    name). The column ``current`` (a profile name) is marked "(this run)", so that a chapter
    shows near its top what it runs with."""
    import pandas as pd

    if chapter is not None and chapter not in _CHAPTERS:
        raise KeyError(
            f"no sizes for chapter section {chapter!r}; sections: {', '.join(sorted(_CHAPTERS))}"
        )
    rows = {**_SHARED, "batch_size": (32, 32), **(_CHAPTERS[chapter] if chapter else {})}
    names = [n + (" (this run)" if n == current else "") for n in PROFILE_NAMES]
    table = pd.DataFrame({n: [pair[i] for pair in rows.values()] for i, n in enumerate(names)})
    table.index = pd.Index(list(rows), name="setting")
    return table.astype(object)


def get(name: str) -> Profile:
    """The :class:`Profile` called ``name`` (``quick``, ``full`` or ``auto``)."""
    return _PROFILES[resolve(name)]
