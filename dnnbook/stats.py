"""Small statistics for multi-seed comparisons: mean ± std and Student-t confidence intervals."""
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
