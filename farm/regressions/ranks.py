"""The rank scan statistic: for every split of a segment, the standardized Mann-Whitney statistic of the
left part against the right part, and the p-value of its maximum over all splits.

Ranks make the test blind to the shape of the noise (a lone spike moves one rank by at most n, heavy tails
and two modes change nothing), and under "no change" the ranks are a random permutation whatever the
values' distribution, so one p-value formula serves every benchmark. The maximum over the splits is
searched, so its p-value is not the plain Mann-Whitney one: it uses the tail approximation of the maximum
of a standardized two-sample process (James, James & Siegmund 1987, with Siegmund's discreteness
correction), which a simulation shows to be slightly conservative at n = 16..200
(tests/farm/regressions/test_regressions_ranks.py); with 8 splits or fewer it runs a little low, and
Bonferroni over the splits (conservative) is used instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def midranks(x: np.ndarray) -> tuple[np.ndarray, float]:
    """1-based ranks with ties averaged, and the tie term sum(t^3 - t) the variance needs."""
    n = x.size
    order = np.argsort(x, kind="stable")
    s = x[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ranks = np.empty(n)
    if starts.size == n:  # no ties: the common case, one scatter
        ranks[order] = np.arange(1.0, n + 1.0)
        return ranks, 0.0
    ends = np.append(starts[1:], n)
    mid = (starts + ends + 1) / 2.0
    ranks[order] = mid[np.cumsum(new) - 1]
    t = (ends - starts).astype(float)
    return ranks, float(np.sum(t**3 - t))


@dataclass(frozen=True)
class Scan:
    """The best split of one segment: ``split`` is the first index (in the segment) of the right part."""

    split: int
    z: float  # signed: > 0 when the right part ranks higher
    p_value: float


def scan(x: np.ndarray, min_segment: int) -> Scan | None:
    """The split maximizing |z| with at least ``min_segment`` points on each side, with its p-value."""
    n = x.size
    if n < 2 * min_segment:
        return None
    ranks, ties = midranks(x)
    k = np.arange(min_segment, n - min_segment + 1)
    s = np.cumsum(ranks)[k - 1]  # rank sum of the left part of each split
    m = n - k
    u = s - k * (k + 1) / 2.0
    var = k * m / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var[0] <= 0:  # every value equal: nothing can change
        return None
    z = (u - k * m / 2.0) / np.sqrt(var)
    best = int(np.argmax(np.abs(z)))
    zmax = float(z[best])
    # z is left-vs-right: a right part ranking higher gives a small left rank sum, so flip the sign.
    return Scan(split=int(k[best]), z=-zmax, p_value=max_p_value(abs(zmax), n, min_segment))


def z_at(x: np.ndarray, split: int) -> float:
    """The signed z of one given split (right part ranking higher -> positive)."""
    n = x.size
    ranks, ties = midranks(x)
    k, m = split, n - split
    var = k * m / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 0.0
    return -(float(ranks[:split].sum()) - k * (k + 1) / 2.0 - k * m / 2.0) / math.sqrt(var)


def max_p_value(b: float, n: int, min_segment: int) -> float:
    """P(max over splits of |z| >= b) under no change, for a segment of n points.

    b*phi(b) * sum_k nu(b / sqrt(n t (1-t))) / (n t (1-t)), t = k/n, with nu(x) ~ exp(-0.583 x)
    (Siegmund's correction for a discrete scan).
    """
    k = np.arange(min_segment, n - min_segment + 1, dtype=float)
    one = math.erfc(b / math.sqrt(2.0))  # the plain two-sided test of one split
    if k.size <= 8:  # a handful of splits of a short segment: the scan formula runs a little low there
        return float(min(1.0, k.size * one))  # Bonferroni, conservative
    t = k / n
    w = n * t * (1.0 - t)
    total = float(np.sum(np.exp(-0.583 * b / np.sqrt(w)) / w))  # a Riemann sum of the integral over t
    p = b * math.exp(-0.5 * b * b) / _SQRT_2PI * total
    return float(min(1.0, max(p, one)))  # never below the test of one split
