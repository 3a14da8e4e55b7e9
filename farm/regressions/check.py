"""The per-run check made when a result is stored: is this one value worse than the recent runs?

Cheaper and more immediate than :func:`detect` (which needs ``min_segment`` points at the new level before
it can call a change): one value is compared with the median of the recent history, in units of the
history's robust spread (1.4826 * MAD, the standard deviation for normal noise; a spike in the history
moves neither). When the recent window itself holds a change point, only the runs after it are the
baseline, so a level that was already reported does not keep every later run suspect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from farm.regressions import levels
from farm.regressions.detect import detect

#: check()'s extra options and their defaults.
OPTIONS: dict[str, float] = {
    "window": 30,  # the last N finite history points make the baseline
    "min_history": 10,  # fewer finite points than this: enough_history is False and nothing is suspect
    "max_score": 4.0,  # robust z above which a worse value is beyond noise
}


@dataclass(frozen=True)
class RunCheck:
    """The verdict on one value against its recent history."""

    suspect: bool  # worse than the recent runs beyond noise and beyond the magnitude thresholds
    baseline: float  # median of the baseline runs (nan without history)
    change_pct: float  # signed (value - baseline) / |baseline| * 100
    score: float  # robust z, positive in the worse direction
    p_value: float  # one-sided normal tail of score: approximate, small histories make it optimistic
    reason: str
    enough_history: bool
    history_used: int = 0  # how many runs made the baseline


def check(
    history: Sequence[float],
    value: float,
    higher_is_better: bool,
    *,
    min_change_pct: float = 0.0,
    min_change_abs: float = 0.0,
    **options: float,
) -> RunCheck:
    """Whether ``value`` is worse than the recent distribution of ``history`` (oldest first).

    Non-finite history points are skipped; a non-finite ``value`` is never suspect (its reason says so).
    Options (see :data:`OPTIONS`): ``window``, ``min_history``, ``max_score``.
    """
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"check() got unknown options {sorted(unknown)}; known: {sorted(OPTIONS)}")
    opts = {**OPTIONS, **options}
    window, min_history, max_score = int(opts["window"]), int(opts["min_history"]), float(opts["max_score"])
    if window < 2 or min_history < 2 or window < min_history:
        raise ValueError(f"need window >= min_history >= 2, got window={window}, min_history={min_history}")
    levels.check_thresholds(min_change_pct, min_change_abs)

    h = np.asarray(history, dtype=float)
    h = h[np.isfinite(h)][-window:]
    value = float(value)
    if h.size < min_history:
        base = float(np.median(h)) if h.size else math.nan
        return RunCheck(
            suspect=False,
            baseline=base,
            change_pct=levels.change_pct(base, value) if h.size and math.isfinite(value) else math.nan,
            score=math.nan,
            p_value=math.nan,
            reason=f"not enough history: {h.size} of the {min_history} runs needed",
            enough_history=False,
            history_used=int(h.size),
        )
    if not math.isfinite(value):
        return RunCheck(False, float(np.median(h)), math.nan, math.nan, math.nan,
                        f"value {value} is not a finite number", True, int(h.size))  # fmt: skip

    changes = detect(h, higher_is_better, min_change_pct=min_change_pct, min_change_abs=min_change_abs)
    if changes and h.size - changes[-1].index >= min_history:
        h = h[changes[-1].index :]
    base = float(np.median(h))
    dev = np.abs(h - base)
    scale = 1.4826 * float(np.median(dev))
    if scale == 0.0:  # over half the runs equal (quantized timings): the mean deviation still sees spread
        scale = 1.2533 * float(np.mean(dev))
    delta = (base - value) if higher_is_better else (value - base)  # > 0: worse
    score = delta / scale if scale > 0 else (0.0 if delta == 0 else math.copysign(math.inf, delta))
    p_value = 0.5 * math.erfc(score / math.sqrt(2.0))
    pct = levels.change_pct(base, value)
    big = levels.large_enough(base, value, min_change_pct, min_change_abs)
    suspect = score > max_score and big
    return RunCheck(
        suspect=suspect,
        baseline=base,
        change_pct=pct,
        score=score,
        p_value=p_value,
        reason=_reason(value, base, pct, score, h.size, suspect, big, max_score),
        enough_history=True,
        history_used=int(h.size),
    )


def _reason(value: float, base: float, pct: float, score: float, n: int, suspect: bool, big: bool,
            max_score: float) -> str:  # fmt: skip
    """One human line, without the metric's name (the caller knows it)."""
    how = "worse" if score > 0 else "better"
    head = f"value {value:.4g} is {abs(pct):.1f} % {how} than the median {base:.4g} of the last {n}"
    tail = f"(robust z {score:.1f})"
    if suspect:
        return f"{head} {tail}"
    if score <= max_score:
        return f"{head}: within noise {tail}"
    return f"{head} {tail}: beyond noise but under the magnitude threshold" if not big else f"{head} {tail}"
