"""farm.regressions.detect: fixed cases, rates over many random series (never one tuned seed), properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm.regressions import ChangePoint, detect


def _noise(rng: np.random.Generator, n: int, cv: float, kind: str) -> np.ndarray:
    if kind == "gauss":
        return 1 + cv * rng.standard_normal(n)
    if kind == "lognormal":
        s = math.sqrt(math.log1p(cv * cv))
        return rng.lognormal(-s * s / 2, s, n)
    if kind == "t3":
        return 1 + cv / math.sqrt(3) * rng.standard_t(3, n)
    return 1 + 0.5 * cv * rng.standard_normal(n) + 1.7 * cv * (rng.random(n) < 0.3)  # bimodal


def _step(seed: int, n: int = 120, at: int = 60, size: float = 0.2, cv: float = 0.02, kind: str = "gauss"):
    rng = np.random.default_rng(seed)
    level = np.full(n, 100.0)
    level[at:] *= 1 + size
    return level * _noise(rng, n, cv, kind)


def test_a_20_pct_step_is_found_at_its_index() -> None:
    cps = detect(_step(0), higher_is_better=False)
    assert len(cps) == 1
    cp = cps[0]
    assert isinstance(cp, ChangePoint)
    assert abs(cp.index - 60) <= 1
    assert cp.change_pct == pytest.approx(20, abs=2)
    assert cp.regression  # latency went up
    assert cp.p_value < 1e-6
    assert cp.before_ci[0] <= cp.before <= cp.before_ci[1]
    assert cp.after_ci[0] <= cp.after <= cp.after_ci[1]
    assert cp.before_ci[1] < cp.after_ci[0]


def test_direction_follows_higher_is_better() -> None:
    up = _step(1, size=0.2)
    assert detect(up, higher_is_better=True)[0].regression is False
    assert detect(up, higher_is_better=False)[0].regression is True
    down = _step(1, size=-0.2)
    assert detect(down, higher_is_better=True)[0].regression is True
    assert detect(down, higher_is_better=True)[0].change_pct < 0


def test_a_single_spike_is_not_a_change() -> None:
    for seed in range(20):
        x = _step(seed, size=0.0)
        x[int(np.random.default_rng(seed).integers(0, 120))] *= 3
        assert detect(x, False) == [], seed


def test_flat_noise_gives_nothing_whatever_its_shape() -> None:
    alarms = 0
    for kind in ("gauss", "lognormal", "t3", "bimodal"):
        for seed in range(50):
            alarms += len(detect(_step(seed, n=150, size=0.0, cv=0.04, kind=kind), False))
    assert alarms / 200 < 0.05


@pytest.mark.parametrize("kind", ["gauss", "lognormal", "t3", "bimodal"])
def test_recall_over_random_series(kind: str) -> None:
    """Over 50 random series with 1-2 changes of 5-30 % (>= 3x the CV), >= 90 % are found within +-3."""
    rng = np.random.default_rng(12345)
    found = total = extra = 0
    for _ in range(50):
        n = int(rng.integers(40, 201))
        cv = rng.uniform(0.005, 0.04)
        at = sorted(rng.choice(np.arange(10, n - 9), size=2 if n > 60 else 1, replace=False).tolist())
        if len(at) == 2 and at[1] - at[0] < 10:
            at = at[:1]
        level = np.full(n, 50.0)
        for a in at:
            level[a:] *= 1 + rng.uniform(max(0.05, 3 * cv), 0.3) * rng.choice([-1, 1])
        cps = [c.index for c in detect(level * _noise(rng, n, cv, kind), False, min_change_pct=2)]
        total += len(at)
        hits = sum(any(abs(c - a) <= 3 for c in cps) for a in at)
        found += hits
        extra += len(cps) - hits
    assert found / total >= 0.9
    assert extra / total <= 0.1


def test_magnitude_thresholds_pct_and_abs() -> None:
    x = _step(3, size=0.05, cv=0.005)  # a clear 5 % step: level 100 -> 105
    assert len(detect(x, False)) == 1
    assert detect(x, False, min_change_pct=10) == []
    assert len(detect(x, False, min_change_pct=3)) == 1
    assert detect(x, False, min_change_abs=8.0) == []
    assert len(detect(x, False, min_change_abs=3.0)) == 1
    # Both set: the change must pass both.
    assert detect(x, False, min_change_pct=3, min_change_abs=8.0) == []
    assert len(detect(x, False, min_change_pct=3, min_change_abs=3.0)) == 1


def test_gentle_drift_under_the_threshold_is_not_reported() -> None:
    alarms = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        x = 100 * (1 + 0.02 * np.linspace(0, 1, 200)) * (1 + 0.005 * rng.standard_normal(200))
        alarms += len(detect(x, False, min_change_pct=2))
    assert alarms / 30 < 0.1


def test_nan_and_inf_are_skipped_and_indexes_stay_original() -> None:
    x = _step(4)
    ref = detect(x, False)
    y = np.insert(x, [10, 30, 30], [np.nan, np.inf, -np.inf])  # three before the change at ~60
    got = detect(y.tolist(), False)
    assert [c.index for c in got] == [c.index + 3 for c in ref]
    assert math.isnan(y[10]) and np.isfinite(y[got[0].index])
    assert got[0].before == ref[0].before and got[0].after == ref[0].after


def test_short_series_give_nothing() -> None:
    assert detect([], False) == []
    assert detect([1.0, 2.0, 3.0], False) == []
    assert detect([1.0] * 5 + [2.0] * 4, False, min_segment=5) == []  # 9 < 2 * 5
    assert detect([np.nan] * 20 + [1.0] * 5, False) == []
    assert detect([3.0] * 50, False) == []  # constant


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown options"):
        detect([1.0] * 20, False, windw=3)
    with pytest.raises(ValueError, match="alpha"):
        detect([1.0] * 20, False, alpha=0)
    with pytest.raises(ValueError, match="min_change_pct"):
        detect([1.0] * 20, False, min_change_pct=-1)
    with pytest.raises(ValueError, match="one-dimensional"):
        detect([[1.0, 2.0]], False)


def test_max_change_points_keeps_the_most_significant() -> None:
    level = np.repeat([100.0, 130.0, 131.5, 100.0], 40)
    x = level * (1 + 0.003 * np.random.default_rng(5).standard_normal(160))
    assert len(detect(x, False)) == 3
    kept = detect(x, False, max_change_points=2)
    assert [abs(c.change_pct) > 10 for c in kept] == [True, True]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 150),
    scale=st.floats(1e-3, 1e6),
    shift=st.floats(0.2, 0.5),
)
def test_properties(seed: int, n: int, scale: float, shift: float) -> None:
    """Deterministic; sorted and in range; the same positions after any increasing transform of the values."""
    rng = np.random.default_rng(seed)
    x = 1 + 0.03 * rng.standard_normal(n)
    if n > 20:
        x[n // 2 :] *= 1 + shift
    cps = detect(x, True)
    assert cps == detect(x.copy(), True)
    idx = [c.index for c in cps]
    assert idx == sorted(set(idx)) and all(5 <= i <= n - 5 for i in idx)
    assert all(c.p_value < 0.01 for c in cps)
    assert [c.index for c in detect(np.log(x.clip(1e-9)) * scale + 7, True)] == idx
    assert all(c.regression == (c.after < c.before) for c in cps)
