"""Change points of a whole series: rank-based binary segmentation, then a merge pass.

1. Split: in a segment, the split with the largest standardized Mann-Whitney |z| (``ranks.scan``) is a
   change if the p-value of that maximum is under ``alpha``; both sides are then split the same way.
2. Merge (as hunter / Otava do after their split step): each change is re-tested between its final
   neighbours; the weakest one that is not significant any more, or whose level step (medians of the two
   adjacent segments) is under the magnitude thresholds, is removed and its neighbours re-tested, until
   every change passes. Removing small steps one at a time is what keeps gentle drift, which the rank test
   does see, from being reported as a staircase of small changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from farm.regressions import levels, ranks


@dataclass(frozen=True)
class ChangePoint:
    """A level change: ``values[index]`` is the first point at the new level (original positions)."""

    index: int
    before: float  # median of the segment before the change
    after: float  # median of the segment after it
    change_pct: float  # signed (after - before) / |before| * 100
    p_value: float  # of the max-type rank test between the two adjacent segments
    regression: bool  # worse in the direction the metric is better in
    before_ci: tuple[float, float] | None = None  # ~95 % distribution-free interval of ``before``
    after_ci: tuple[float, float] | None = None


#: detect()'s extra options and their defaults (anything else is refused, so a typo never goes unseen).
OPTIONS = {"max_change_points": None}


def detect(
    values: Sequence[float],
    higher_is_better: bool,
    *,
    min_change_pct: float = 0.0,
    min_change_abs: float = 0.0,
    alpha: float = 0.01,
    min_segment: int = 5,
    **options: object,
) -> list[ChangePoint]:
    """Every significant change point of ``values`` (improvements and regressions), sorted by index.

    NaN and +-inf values are skipped: the series is analysed without them and indexes refer to the
    original positions. Fewer than ``2 * min_segment`` finite values give []. Deterministic, no randomness.
    Option ``max_change_points`` keeps at most that many (the most significant ones).
    """
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"detect() got unknown options {sorted(unknown)}; known: {sorted(OPTIONS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if int(min_segment) != min_segment or min_segment < 1:
        raise ValueError(f"min_segment must be an integer >= 1, got {min_segment!r}")
    levels.check_thresholds(min_change_pct, min_change_abs)
    min_segment = int(min_segment)

    raw = np.asarray(values, dtype=float)
    if raw.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {raw.shape}")
    finite = np.isfinite(raw)
    positions = np.flatnonzero(finite)
    x = raw[finite]
    if x.size < 2 * min_segment:
        return []

    splits = _split(x, alpha, min_segment)
    kept = _merge(x, splits, alpha, min_segment, min_change_pct, min_change_abs)
    limit = options.get("max_change_points")
    if limit is not None and len(kept) > int(limit):  # type: ignore[call-overload]
        kept = sorted(sorted(kept, key=lambda s: s[1])[: int(limit)])  # type: ignore[call-overload]
    return [_change_point(x, positions, kept, i, higher_is_better) for i in range(len(kept))]


def _split(x: np.ndarray, alpha: float, min_segment: int) -> list[int]:
    """Binary segmentation: the sorted split positions whose max-type test passed in their segment."""
    found: list[int] = []
    stack = [(0, x.size)]
    while stack:
        start, end = stack.pop()
        best = ranks.scan(x[start:end], min_segment)
        if best is None or best.p_value >= alpha:
            continue
        at = start + best.split
        found.append(at)
        stack.append((start, at))
        stack.append((at, end))
    return sorted(found)


def _merge(
    x: np.ndarray,
    splits: list[int],
    alpha: float,
    min_segment: int,
    min_change_pct: float,
    min_change_abs: float,
) -> list[tuple[int, float]]:
    """Drop the weakest failing change until all pass; returns (position, p-value) pairs."""
    cps = list(splits)
    while cps:
        bounds = [0, *cps, x.size]
        stats = []
        for i, at in enumerate(cps):
            seg = x[bounds[i] : bounds[i + 2]]
            split = at - bounds[i]
            p = ranks.max_p_value(abs(ranks.z_at(seg, split)), seg.size, min_segment)
            before, after = float(np.median(seg[:split])), float(np.median(seg[split:]))
            big = levels.large_enough(before, after, min_change_pct, min_change_abs)
            stats.append((p, big, abs(after - before)))
        failing = [i for i, (p, big, _) in enumerate(stats) if p >= alpha or not big]
        if not failing:
            return [(at, stats[i][0]) for i, at in enumerate(cps)]
        insignificant = [i for i in failing if stats[i][0] >= alpha]
        if insignificant:
            worst = max(insignificant, key=lambda i: stats[i][0])
        else:
            worst = min(failing, key=lambda i: stats[i][2])
        del cps[worst]
    return []


def _change_point(
    x: np.ndarray, positions: np.ndarray, kept: list[tuple[int, float]], i: int, higher_is_better: bool
) -> ChangePoint:
    """The public record of the i-th kept change, levels from its two adjacent final segments."""
    bounds = [0, *(at for at, _ in kept), x.size]
    left = np.sort(x[bounds[i] : bounds[i + 1]])
    right = np.sort(x[bounds[i + 1] : bounds[i + 2]])
    before, after = float(np.median(left)), float(np.median(right))
    return ChangePoint(
        index=int(positions[kept[i][0]]),
        before=before,
        after=after,
        change_pct=levels.change_pct(before, after),
        p_value=float(kept[i][1]),
        regression=levels.is_worse(before, after, higher_is_better),
        before_ci=levels.median_ci(left),
        after_ci=levels.median_ci(right),
    )
