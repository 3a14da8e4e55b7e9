"""Seeded bootstrap helpers for comparisons (farm.queries.compare): pure numpy, no database.

Why a bootstrap: a comparison's figures are medians over a handful of repeats (or percentiles of one run's
latency samples), and the ratio of two such medians has no usable closed form. Every draw comes from a
generator seeded with a fixed seed and the series' own name (crc32, stable across processes), so the same
database gives the same intervals and verdicts every time.
"""

from __future__ import annotations

import zlib

import numpy as np

N_DRAWS = 2000
SEED = 20261206
LEVEL = 0.95  # a 95 % interval: the 2.5th and 97.5th percentiles of the draws


def generator(seed: int, *names: str) -> np.random.Generator:
    """A generator of its own for one series and metric, stable across processes."""
    return np.random.default_rng([seed, zlib.crc32("/".join(names).encode())])


def median_draws(values: list[float], rng: np.random.Generator, n: int = N_DRAWS) -> np.ndarray | None:
    """The median over repeats, resampled with replacement; None below two values (no spread to see)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None
    idx = rng.integers(0, len(v), size=(n, len(v)))
    return np.median(v[idx], axis=1)


def quantile_draws(
    samples: list[float], q: float, rng: np.random.Generator, n: int = N_DRAWS
) -> np.ndarray | None:
    """The q-quantile of a resample of one run's samples, drawn as the order statistic at Binomial(n, q):
    what resampling gives, without building n x len(samples) arrays. None below 20 samples."""
    ordered = np.sort(np.asarray(samples, dtype=float))
    if len(ordered) < 20:
        return None
    j = np.clip(rng.binomial(len(ordered), q, size=n), 0, len(ordered) - 1)
    return ordered[j]


def mean_draws(samples: list[float], rng: np.random.Generator, n: int = N_DRAWS) -> np.ndarray | None:
    """The mean of a resample of one run's samples (normal by the central limit theorem)."""
    v = np.asarray(samples, dtype=float)
    if len(v) < 20:
        return None
    return v.mean() + v.std(ddof=1) / np.sqrt(len(v)) * rng.standard_normal(n)


def interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of the draws."""
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(draws, [tail, 100.0 - tail])
    return float(lo), float(hi)
