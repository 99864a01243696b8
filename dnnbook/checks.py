"""The book's one vocabulary of checks. Each function tests one kind of condition on
per-seed measurements and returns a :class:`~dnnbook.claims.Check`, which a chapter shows with
``.claim(statement, figure=...)``, the threshold written at the call::

    acc = experiments.per_seed(history, "val_accuracy")      # seeds × configs
    checks.paired(acc["Adam"], acc["SGD"], above=0.01).claim(
        "Adam ends more than 1 point above SGD ...", figure="learning curves")

A check's ``margin`` is in the claim's own units and positive when the claim holds: how far
the deciding bound lies inside its threshold (``docs/claims.md`` lists the checks).
"""

from __future__ import annotations

import math
from typing import Any, Sequence, TypedDict, Unpack

import numpy as np

from dnnbook.claims import Check
from dnnbook.stats import mean_ci, paired_diff

__all__ = [
    "Check",
    "paired",
    "below",
    "equivalent",
    "mean_above",
    "mean_below",
    "every",
    "close",
    "share",
    "all_of",
    "values",
]


def values(x: Any) -> np.ndarray:
    """``x`` (a list, array or pandas Series, in seed order) as a 1-D float array."""
    v = np.asarray(getattr(x, "to_numpy", lambda: x)(), dtype=float).ravel()
    if v.size == 0:
        raise ValueError("a check needs at least one value")
    return v


def _num(x: float, digits: int, sign: bool = True) -> str:
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = values(a), values(b)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.size} vs {b.size}")
    return a, b


def _bound(
    ci: Any,
    threshold: float,
    *,
    upper: bool,
    one_sided: bool,
    label: str,
    digits: int,
    signed: bool,
) -> Check:
    """The check that ``ci`` (computed at 90% when ``one_sided``, else 95%) lies above
    ``threshold`` by its lower end, or below it by its upper end (``upper``)."""
    side = "upper" if upper else "lower"
    bound = (
        f"one-sided 95% {side} bound {_num(ci.high if upper else ci.low, digits, signed)}"
        if one_sided
        else f"95% CI [{_num(ci.low, digits, signed)}, {_num(ci.high, digits, signed)}]"
    )
    margin = threshold - ci.high if upper else ci.low - threshold
    return Check(
        bool(margin > 0),
        f"{label} {_num(ci.mean, digits, signed)} ± {ci.std:.{digits}f}, {bound}, "
        f"n={ci.n}; threshold {threshold:{'+g' if signed else 'g'}}",
        float(margin),
    )


class Format(TypedDict, total=False):
    """How a check prints its numbers: ``label`` names the measured quantity (default
    "difference" or "mean"), ``digits`` the decimals (default 4)."""

    label: str
    digits: int


def _paired_bound(
    a: Any, b: Any, threshold: float, upper: bool, one_sided: bool, fmt: Format
) -> Check:
    if unknown := sorted(set(fmt) - set(Format.__annotations__)):
        raise TypeError(f"unexpected keyword {', '.join(unknown)}; choices: label, digits")
    d = paired_diff(*_pair(a, b), level=0.9 if one_sided else 0.95)
    return _bound(
        d,
        threshold,
        upper=upper,
        one_sided=one_sided,
        label=fmt.get("label", "difference"),
        digits=fmt.get("digits", 4),
        signed=True,
    )


def paired(
    a: Any, b: Any, *, above: float = 0.0, one_sided: bool = False, **fmt: Unpack[Format]
) -> Check:
    """Whether the mean of ``a − b`` (paired by seed) lies above ``above``: the lower end of
    its 95% CI does, or with ``one_sided`` its one-sided 95% lower bound (the 90% CI's lower
    end), for a claim about one direction only. Margin: that lower end minus ``above``."""
    return _paired_bound(a, b, above, False, one_sided, fmt)


def below(
    a: Any, b: Any, *, under: float = 0.0, one_sided: bool = True, **fmt: Unpack[Format]
) -> Check:
    """Whether the mean of ``a − b`` (paired by seed) lies below ``under``: its one-sided 95%
    upper bound does (or, with ``one_sided=False``, the upper end of its 95% CI). Margin:
    ``under`` minus that upper end."""
    return _paired_bound(a, b, under, True, one_sided, fmt)


def equivalent(
    a: Any, b: Any, *, margin: float, label: str = "difference", digits: int = 4
) -> Check:
    """Equivalence within ``±margin`` (paired TOST at the 5% level): the 90% CI of the mean
    of ``a − b`` lies strictly inside ``(−margin, margin)``. Use it for "A does not differ
    from B by more than ...": a 95% CI that merely contains 0 says nothing. Margin: how far
    the CI's farther end lies inside ``±margin``."""
    if margin <= 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    a, b = _pair(a, b)
    d = paired_diff(a, b, level=0.9)
    slack = margin - max(abs(d.low), abs(d.high))
    return Check(
        bool(-margin < d.low and d.high < margin),
        f"{label} {_num(d.mean, digits)} ± {d.std:.{digits}f}, 90% CI "
        f"[{_num(d.low, digits)}, {_num(d.high, digits)}], n={d.n}; "
        f"equivalence margin ±{margin:g} (TOST)",
        float(slack),
    )


def mean_above(
    x: Any, threshold: float, *, one_sided: bool = False, label: str = "mean", digits: int = 4
) -> Check:
    """Whether the mean of ``x`` lies above ``threshold``: the lower end of its 95% CI (or
    its one-sided 95% lower bound) does. Margin: that lower end minus ``threshold``."""
    ci = mean_ci(values(x), 0.9 if one_sided else 0.95)
    return _bound(
        ci, threshold, upper=False, one_sided=one_sided, label=label, digits=digits, signed=False
    )


def mean_below(
    x: Any, threshold: float, *, one_sided: bool = False, label: str = "mean", digits: int = 4
) -> Check:
    """Whether the mean of ``x`` lies below ``threshold``: the upper end of its 95% CI (or
    its one-sided 95% upper bound) does. Margin: ``threshold`` minus that upper end."""
    ci = mean_ci(values(x), 0.9 if one_sided else 0.95)
    return _bound(
        ci, threshold, upper=True, one_sided=one_sided, label=label, digits=digits, signed=False
    )


def every(
    x: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    label: str = "value",
    digits: int = 4,
) -> Check:
    """Whether every value of ``x`` (one per seed, or per layer) lies strictly inside
    ``(low, high)``. NaN never does. Margin: the smallest distance of a value to a bound
    (negative for the worst value outside)."""
    if not (low < high):
        raise ValueError(f"every needs low < high, got [{low}, {high}]")
    v = values(x)
    finite = v[~np.isnan(v)]
    gaps = np.minimum(finite - low, high - finite) if finite.size else np.array([-math.inf])
    margin = float(gaps.min()) if finite.size == v.size else -math.inf
    where = " and ".join(
        s
        for s in (
            f"> {low:g}" if math.isfinite(low) else "",
            f"< {high:g}" if math.isfinite(high) else "",
        )
        if s
    )
    lo, hi = (float(np.nanmin(v)), float(np.nanmax(v))) if finite.size else (math.nan,) * 2
    nans = f", {v.size - finite.size} NaN" if finite.size < v.size else ""
    return Check(
        bool(finite.size == v.size and margin > 0),
        f"{label} from {lo:.{digits}g} to {hi:.{digits}g} over {v.size}{nans}; "
        f"each must be {where or 'finite'}",
        margin,
    )


def close(a: Any, b: Any, *, atol: float = 0.0, label: str = "largest difference") -> Check:
    """Whether every ``|a − b|`` (arrays of one shape, compared element by element) is at most
    ``atol``: ``atol=0`` for "exactly equal", a float rounding for a formula checked against
    what Keras computed. Margin: ``atol`` minus the largest difference."""
    if atol < 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"close needs arrays of one shape, got {a.shape} and {b.shape}")
    gap = float(np.max(np.abs(a - b))) if a.size else 0.0
    if np.isnan(gap):
        gap = math.inf
    return Check(
        bool(gap <= atol),
        f"{label} {gap:.3g} over {a.size} numbers; at most {atol:g} allowed",
        float(atol - gap),
    )


def share(
    hits: Sequence[bool] | np.ndarray,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    label: str = "runs",
) -> Check:
    """Whether the share of true values in ``hits`` (one per seed) is at least ``at_least``
    or at most ``at_most`` (give one). Margin: how far the share lies past its bound."""
    if (at_least is None) == (at_most is None):
        raise ValueError("share needs exactly one of at_least and at_most")
    h = np.asarray(hits, dtype=bool).ravel()
    if h.size == 0:
        raise ValueError("a check needs at least one value")
    p = float(h.mean())
    if at_least is not None:
        holds, margin, rule = p >= at_least, p - at_least, f"at least {at_least:.0%}"
    else:
        holds, margin, rule = p <= at_most, at_most - p, f"at most {at_most:.0%}"
    return Check(bool(holds), f"{label}: {int(h.sum())} of {h.size} ({p:.0%}); {rule}", margin)


def all_of(*checks: Check) -> Check:
    """Several conditions of one claim: it holds when each does (``None`` if any found
    nothing to check); the evidence joined with "; ", the smallest margin."""
    if not checks:
        raise ValueError("all_of needs at least one check")
    if any(c.holds is None for c in checks):
        holds = None
    else:
        holds = all(bool(c.holds) for c in checks)
    margins = [c.margin for c in checks if c.margin is not None]
    return Check(holds, "; ".join(c.evidence for c in checks), min(margins) if margins else None)
