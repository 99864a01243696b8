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


# --- per-chapter sections: one block per chapter, {"quick": {...}, "full": {...}} -----------
# chapter 0: the baseline (five seeds: the gap over softmax regression is a point or two)
_BASELINE: dict[str, dict[str, Any]] = {"quick": {"n_seeds": 5}, "full": {"n_seeds": 5}}
# chapter 1: vanishing and exploding gradients
_GRADIENTS: dict[str, dict[str, Any]] = {
    "quick": {
        # the pairings' training: with 3 seeds one that learns slowly widens a 95% CI past 0
        "n_seeds": 5,
        "depth": 20,
        "width": 100,
        "probe_batch": 256,
        "n_train": 1000,
        "n_valid": 1000,
        "epochs": 3,
        "learning_rate": 0.01,
        "dying_depth": 5,
        "dying_learning_rate": 0.01,
        # per-network shares of woken units, paired by seed: 3 seeds leave a t-bound wide
        "dying_seeds": 8,
        "bn_depth": 10,
        "clip_depth": 5,
        "clip_learning_rate": 1.0,
        "explode_depths": (5, 10, 20),
    },
    "full": {
        "n_seeds": 5,
        "depth": 50,
        "width": 100,
        "probe_batch": 256,
        "n_train": 55000,
        "n_valid": 5000,
        "epochs": 10,
        "learning_rate": 0.01,
        "dying_depth": 5,
        "dying_learning_rate": 0.01,
        "dying_seeds": 8,
        "bn_depth": 20,
        "clip_depth": 5,
        "clip_learning_rate": 1.0,
        "explode_depths": (5, 10, 20, 50),
    },
}
# chapter 2: pretrained layers
_PRETRAINING: dict[str, dict[str, Any]] = {
    "quick": {
        # task B: paired differences vary by about 0.7 points from seed to seed; 10 seeds put
        # the claims' one-sided bounds about half a point from the mean (5: nearly a point)
        "n_seeds": 10,
        "n_b_train": 200,
        "a_epochs": 5,
        "b_frozen_epochs": 4,
        "b_tuned_epochs": 8,
        "pretext_epochs": 8,
        "gan_epochs": 5,
        "n_labels": 500,
        # the few-label comparison and the probes: now and then one seed ends several points
        # low (or high) from a pretrained start; 10 seeds keep one such seed from deciding
        "few_seeds": 10,
        "few_epochs": 10,
    },
    "full": {
        "n_seeds": 20,
        "n_b_train": 200,
        "a_epochs": 20,
        "b_frozen_epochs": 5,
        "b_tuned_epochs": 15,
        "pretext_epochs": 20,
        "gan_epochs": 30,
        "n_labels": 500,
        "few_seeds": 20,
        "few_epochs": 20,
    },
}
# chapter 3: optimizers and learning-rate schedules
_OPTIMIZERS: dict[str, dict[str, Any]] = {
    "quick": {
        "n_train": 2000,
        "n_valid": 1000,
        "n_test": 1000,
        "epochs": 3,
        "finder_steps": 120,
        "finder_seeds": 3,  # the finder's loss curve averaged over 3 runs: one run's pick is noisy
        # paired differences of a point or two need narrow intervals: 10 seeds (lockstep)
        "n_seeds": 10,
        # ReduceLROnPlateau decides once per epoch: it needs more than 3 epochs to act
        "plateau_epochs": 10,
    },
    "full": {
        "n_train": 55000,
        "n_valid": 5000,
        "n_test": 10000,
        "epochs": 20,
        "finder_steps": 500,
        "finder_seeds": 3,
        "n_seeds": 5,
        "plateau_epochs": 20,
    },
}
# chapter 4: regularization (Adam's learning rate, 2e-3, is written in the chapter's builder)
_REGULARIZATION: dict[str, dict[str, Any]] = {
    "quick": {
        "n_train": 1500,
        "n_valid": 2000,
        "n_test": 2000,
        "n_seeds": 5,  # its CIs compare small gaps: 3 seeds (2 degrees of freedom) leave them wide
        "noise": 0.1,
        "depth": 2,
        "width": 256,
        "epochs": 15,
        "batch_size": 64,
        "l1": 1e-4,
        "l2": 1e-3,
        "dropout_rates": (0.2, 0.5),
        "max_norms": (0.5, 1.0, 2.0),  # three active bounds: the order of their gaps is a claim
        "mc_samples": 30,
        # the tiny networks vary more between seeds than the wide one: 10 seeds (cheap at width 8)
        "underfit": {"depth": 1, "width": 8, "dropout": 0.5, "n_seeds": 10},
        "unstable": {
            "depth": 4,
            "learning_rate": 0.3,
            "momentum": 0.9,
            "epochs": 4,
            "max_norm": 1.0,
            "n_seeds": 8,
        },
    },
    "full": {
        "n_train": 5000,
        "n_valid": 5000,
        "n_test": 10000,
        # MC dropout's change of the test NLL at this size is about 0.02 nats: over 5 seeds the
        # interval of that change reached 0
        "n_seeds": 10,
        "noise": 0.1,
        "depth": 2,
        "width": 256,
        "epochs": 50,
        "batch_size": 64,
        "l1": 1e-4,
        "l2": 1e-3,
        "dropout_rates": (0.1, 0.2, 0.3, 0.5),
        "max_norms": (0.5, 1.0, 2.0),
        "mc_samples": 100,
        "underfit": {"depth": 1, "width": 8, "dropout": 0.5, "n_seeds": 10},
        "unstable": {
            "depth": 4,
            "learning_rate": 0.3,
            "momentum": 0.9,
            "epochs": 10,
            "max_norm": 1.0,
            "n_seeds": 8,
        },
    },
}

_CHAPTER_SECTIONS = {
    "baseline": _BASELINE,
    "gradients": _GRADIENTS,
    "pretraining": _PRETRAINING,
    "optimizers": _OPTIMIZERS,
    "regularization": _REGULARIZATION,
}


def _sections(profile: str) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({k: MappingProxyType(v[profile]) for k, v in _CHAPTER_SECTIONS.items()})


_SIZES = {  # the sizes every chapter shares, per profile (batch size: 32 in both)
    "quick": dict(n_train=5000, n_valid=2000, n_test=2000, epochs=10, n_seeds=3),
    "full": dict(n_train=55000, n_valid=5000, n_test=10000, epochs=30, n_seeds=5),
}
_PROFILES = {
    name: Profile(name, **sizes, sections=_sections(name)) for name, sizes in _SIZES.items()
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


def _flat(section: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, Mapping):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def sizes(chapter: str | None = None, current: str | None = None) -> "Any":
    """A table of what a chapter runs with under both profiles: the sizes every chapter
    shares, then its own section's settings (a row per setting, nested ones as
    ``group.key``; a section's value replaces a shared one of the same name). The column
    ``current`` (a profile name) is marked "(this run)", so that a chapter shows near its top
    what it runs with."""
    import pandas as pd

    if chapter is not None and chapter not in _CHAPTER_SECTIONS:
        raise KeyError(
            f"no sizes for chapter section {chapter!r}; sections: "
            f"{', '.join(sorted(_CHAPTER_SECTIONS))}"
        )
    columns = {}
    for name, shared in _SIZES.items():
        rows = {**shared, "batch_size": _PROFILES[name].batch_size}
        if chapter is not None:
            rows |= _flat(_CHAPTER_SECTIONS[chapter][name])
        columns[name + (" (this run)" if name == current else "")] = rows
    table = pd.DataFrame(columns).astype(object)
    table.index.name = "setting"
    return table.where(table.notna(), "")


def get(name: str) -> Profile:
    """The :class:`Profile` called ``name`` (``quick``, ``full`` or ``auto``)."""
    return _PROFILES[resolve(name)]
