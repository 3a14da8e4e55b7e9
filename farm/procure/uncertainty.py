"""The bootstrap: how sure the farm is of a capacity, a board count and a cost (docs/procurement.md).

Why a bootstrap: the figures are medians over a few stored runs, each with its own search bracket, and a
prediction has a validated error; their spread, carried through the ceil of the board count and the costs,
has no simple closed form. Deterministic: every candidate draws from a generator seeded with the run's
seed and its own name, so the same question on the same database gives the same answer.
"""

from __future__ import annotations

import zlib

import numpy as np

N_DRAWS = 2000
SEED = 20261205
LEVEL = 0.90  # a 90 % interval: the 5th and 95th percentiles of the draws
#: median |N(0, 1)|: turns a median absolute error into a normal sigma
MEDIAN_ABS_NORMAL = 0.6745


def generator(seed: int, *names: str) -> np.random.Generator:
    """A generator of its own for one candidate (stable across processes: crc32, not hash())."""
    return np.random.default_rng([seed, zlib.crc32("/".join(names).encode())])


def run_draws(
    low: list[float], high: list[float], rng: np.random.Generator, n: int, noise_pct: float
) -> np.ndarray:
    """The median over runs resampled with replacement, each run's value drawn uniformly inside its
    bracket [low, high]; with a single run, times (1 + N(0, noise_pct %)): the catalog's minimum change
    stands for the run-to-run variation one run cannot show."""
    lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    k = len(lo)
    idx = rng.integers(0, k, size=(n, k))
    values = lo[idx] + rng.random((n, k)) * (hi[idx] - lo[idx])
    stat = np.median(values, axis=1)
    if k == 1 and noise_pct > 0:
        stat = stat * (1.0 + rng.normal(0.0, noise_pct / 100.0, size=n))
    return np.maximum(stat, 0.0)


def prediction_draws(point: float, error_pct: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """``point`` x exp(N(0, sigma)), sigma chosen so the median |log error| is log(1 + error_pct %)."""
    sigma = np.log1p(error_pct / 100.0) / MEDIAN_ABS_NORMAL
    return point * np.exp(rng.normal(0.0, sigma, size=n))


def interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(draws, [tail, 100.0 - tail], method="nearest")
    return float(lo), float(hi)


def p_less(a: np.ndarray, b: np.ndarray) -> float:
    """P(a < b) over paired draws, ties counted half."""
    return float(np.mean(a < b) + 0.5 * np.mean(a == b))
