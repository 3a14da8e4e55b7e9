"""farm.regressions.check: the per-run test of one new value against its recent history."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from farm.regressions import RunCheck, check


def _history(seed: int = 0, n: int = 200, level: float = 10.0, cv: float = 0.02) -> np.ndarray:
    return level * (1 + cv * np.random.default_rng(seed).standard_normal(n))


def test_a_clearly_slow_value_is_suspect() -> None:
    r = check(_history(), 12.4, higher_is_better=False)
    assert isinstance(r, RunCheck)
    assert r.suspect and r.enough_history
    assert r.baseline == pytest.approx(10, rel=0.02)
    assert r.change_pct == pytest.approx(24, abs=2)
    assert r.score > 4 and r.p_value < 1e-4
    assert r.reason.startswith("value 12.4 is ") and "worse than the median" in r.reason
    assert "last 30" in r.reason and "robust z" in r.reason


def test_a_normal_value_passes() -> None:
    r = check(_history(), 10.1, higher_is_better=False)
    assert not r.suspect and "within noise" in r.reason


def test_normal_values_pass_at_a_low_rate_of_suspects() -> None:
    rng = np.random.default_rng(1)
    suspects = sum(
        check(_history(s), 10 * (1 + 0.02 * rng.standard_normal()), False).suspect for s in range(300)
    )
    assert suspects / 300 < 0.02


def test_direction() -> None:
    h = _history()
    assert check(h, 8.0, higher_is_better=True).suspect  # throughput dropped
    assert not check(h, 8.0, higher_is_better=False).suspect  # latency improved
    assert check(h, 8.0, higher_is_better=False).score < 0


def test_magnitude_thresholds() -> None:
    h = _history(cv=0.002)
    assert check(h, 10.3, False).suspect  # 3 %, far beyond 0.2 % noise
    r = check(h, 10.3, False, min_change_pct=5)
    assert not r.suspect and "under the magnitude threshold" in r.reason
    assert not check(h, 10.3, False, min_change_abs=0.5).suspect
    assert check(h, 10.3, False, min_change_pct=2, min_change_abs=0.2).suspect


def test_too_little_history_says_so() -> None:
    r = check([10.0, 10.1, 9.9], 50.0, False)
    assert not r.suspect and not r.enough_history
    assert "not enough history: 3 of the 10" in r.reason
    assert not check([], 1.0, False).enough_history
    assert not check([math.nan] * 30, 1.0, False).enough_history


def test_a_spike_in_history_does_not_hide_a_slow_value() -> None:
    h = _history()
    h[-5] = 100.0
    assert check(h, 12.0, False).suspect


def test_the_baseline_starts_after_a_change_in_the_window() -> None:
    h = np.r_[_history(1, 15), _history(2, 15, level=12.0)]
    r = check(h, 12.1, False)
    assert not r.suspect and r.history_used == 15
    assert r.baseline == pytest.approx(12, rel=0.02)


def test_quantized_history_with_zero_mad() -> None:
    h = [10.0] * 25 + [11.0] * 5
    assert not check(h, 10.0, False).suspect
    assert check(h, 14.0, False).suspect


def test_non_finite_value_and_unknown_option() -> None:
    assert not check(_history(), math.nan, False).suspect
    with pytest.raises(TypeError, match="unknown options"):
        check(_history(), 1.0, False, windw=5)


def test_under_20_ms_per_call_on_200_points() -> None:
    h = _history()
    check(h, 12.0, False)
    started = time.perf_counter()
    for _ in range(50):
        check(h, 12.0, False, min_change_pct=2)
    assert (time.perf_counter() - started) / 50 < 0.02
