"""Robust levels and the magnitude rules shared by :func:`detect` and :func:`check`."""

from __future__ import annotations

import math

import numpy as np

#: Two-sided 95 % normal quantile, for the order-statistic interval of a median.
_Z95 = 1.959963984540054


def median_ci(sorted_x: np.ndarray) -> tuple[float, float]:
    """Distribution-free ~95 % interval of the median: the order statistics n/2 -+ 1.96 sqrt(n)/2.

    It needs no noise model (the median's rank is binomial), so heavy tails and two modes widen it honestly.
    """
    n = sorted_x.size
    half = _Z95 * math.sqrt(n) / 2.0
    lo = max(0, math.floor(n / 2.0 - half))
    hi = min(n - 1, math.ceil(n / 2.0 + half) - 1)
    return float(sorted_x[lo]), float(sorted_x[hi])


def change_pct(before: float, after: float) -> float:
    """Signed (after - before) / |before| * 100; +-inf from a zero level (0 when both are zero)."""
    if before == 0.0:
        return 0.0 if after == 0.0 else math.copysign(math.inf, after)
    return (after - before) / abs(before) * 100.0


def large_enough(before: float, after: float, min_change_pct: float, min_change_abs: float) -> bool:
    """A change must pass every threshold that is set (a threshold of 0 is not set)."""
    if min_change_pct > 0 and abs(change_pct(before, after)) < min_change_pct:
        return False
    return not (min_change_abs > 0 and abs(after - before) < min_change_abs)


def is_worse(before: float, after: float, higher_is_better: bool) -> bool:
    """Whether moving from ``before`` to ``after`` is a regression."""
    return after < before if higher_is_better else after > before


def check_thresholds(min_change_pct: float, min_change_abs: float) -> None:
    """Refuse negative or non-finite thresholds at once, rather than silently ignoring them."""
    for name, value in (("min_change_pct", min_change_pct), ("min_change_abs", min_change_abs)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
