"""Small statistics for multi-seed comparisons: mean ± std and Student-t confidence intervals,
equivalence tests, and the difference of two proportions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st


@dataclass(frozen=True)
class Interval:
    """A mean with its std, 95% (or ``level``) CI and sample size."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    def excludes(self, value: float = 0.0) -> bool:
        """True when ``value`` lies outside the interval."""
        return not (self.low <= value <= self.high)

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} (95% CI [{self.low:.4f}, {self.high:.4f}], n={self.n})"


def mean_ci(values, level: float = 0.95) -> Interval:
    """Mean, sample std and the Student-t confidence interval of ``values``."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError("mean_ci needs a non-empty 1-D sequence of values")
    mean = float(v.mean())
    if v.size == 1:
        return Interval(mean, float("nan"), float("-inf"), float("inf"), 1)
    std = float(v.std(ddof=1))
    half = float(_st.t.ppf(0.5 + level / 2, df=v.size - 1)) * std / np.sqrt(v.size)
    return Interval(mean, std, float(mean - half), float(mean + half), int(v.size))


def paired_diff(a, b, level: float = 0.95) -> Interval:
    """CI of the mean of ``a - b`` over paired samples (same seeds, same order)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    return mean_ci(a - b, level)


@dataclass(frozen=True)
class Equivalence:
    """A paired two one-sided tests (TOST) result: the ``1 - 2·alpha`` CI of the mean
    difference and the equivalence margin. The difference is shown to lie within
    ``±margin`` (at level ``alpha``) when that whole CI lies inside it."""

    diff: Interval
    margin: float
    alpha: float

    @property
    def holds(self) -> bool:
        """Whether the CI lies strictly inside ``(-margin, margin)``."""
        return -self.margin < self.diff.low and self.diff.high < self.margin

    @property
    def slack(self) -> float:
        """How far the CI's farther end lies inside the margin (negative: outside)."""
        return self.margin - max(abs(self.diff.low), abs(self.diff.high))

    def __str__(self) -> str:
        level = 1 - 2 * self.alpha
        return (
            f"difference {self.diff.mean:+.4f}, {level:.0%} CI [{self.diff.low:+.4f}, "
            f"{self.diff.high:+.4f}] against a margin of ±{self.margin:g} (TOST, n={self.diff.n})"
        )


def equivalent(a, b, margin: float, alpha: float = 0.05) -> Equivalence:
    """Paired equivalence test of ``a - b`` against ``±margin`` (TOST at level ``alpha``:
    the ``1 - 2·alpha`` CI of the mean difference must lie inside the margin). Use it for a
    claim that two things do *not* differ: a CI that merely contains 0 says nothing."""
    if margin <= 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    return Equivalence(paired_diff(a, b, level=1 - 2 * alpha), float(margin), float(alpha))


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    p, zz = x / n, z * z
    centre = (p + zz / (2 * n)) / (1 + zz / n)
    half = z / (1 + zz / n) * np.sqrt(p * (1 - p) / n + zz / (4 * n * n))
    return centre - half, centre + half


def proportion_diff(x1: int, n1: int, x2: int, n2: int, level: float = 0.95) -> Interval:
    """``x1/n1 - x2/n2`` with Newcombe's score interval at ``level`` (Wilson intervals of each
    share combined; good for small counts and shares near 0 or 1). ``std`` is NaN and ``n``
    the smaller count."""
    if min(n1, n2) <= 0 or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError(f"proportion_diff needs 0 <= x <= n and n > 0, got {x1}/{n1}, {x2}/{n2}")
    z = float(_st.norm.ppf(0.5 + level / 2))
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = _wilson(x1, n1, z), _wilson(x2, n2, z)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Interval(float(d), float("nan"), float(low), float(high), int(min(n1, n2)))
