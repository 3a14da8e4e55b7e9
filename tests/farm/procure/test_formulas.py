"""The sizing and cost formulas and the SLA capacity rule, against sums worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from farm.procure import uncertainty as unc
from farm.procure.capacity import _md1_p99_ms, probes_of, queue_capacity, server_capacity
from farm.procure.costs import Economics
from farm.procure.tco import boards_needed, boards_needed_array, crf, tco, tco_per_year_array


def test_capital_recovery_factor() -> None:
    """r = 5 %, n = 3: 0.05 x 1.05^3 / (1.05^3 - 1) = 0.05 x 1.157625 / 0.157625 = 0.367209;
    r = 0: straight line, 1/3."""
    assert crf(0.05, 3) == pytest.approx(0.367209, abs=1e-6)
    assert crf(0.0, 3) == pytest.approx(1 / 3)


def test_boards_needed_with_headroom_and_spares() -> None:
    """2000 q/s on 611 q/s boards with 30 % headroom: 2000 / (611 x 0.7) = 4.676 -> 5; + 1 spare = 6;
    + 10 % spares instead: 5 + ceil(0.5) = 6. Exactly full: 700 / (1000 x 0.7) = 1 board, not 2."""
    e = Economics()
    assert boards_needed(2000, 611, e) == 5
    assert boards_needed(2000, 611, Economics(spares=1)) == 6
    assert boards_needed(2000, 611, Economics(spares_pct=10)) == 6
    assert boards_needed(700, 1000, e) == 1
    draws = boards_needed_array(2000, np.array([611.0, 0.0, 2000.0]), e)
    assert draws[0] == 5 and math.isinf(draws[1]) and draws[2] == 2


def test_tco_hand_worked() -> None:
    """5 boards at $3,500, 20 W active, 9 W idle, duty 0.5, PUE 1.2, $0.15/kWh, 3 years at 5 %:
    capex 17,500; capital/yr 17,500 x 0.3672086 = 6,426.15;
    watts 5 x (20 x 0.5 + 9 x 0.5) = 72.5 W -> 72.5 x 8760 / 1000 x 1.2 = 762.12 kWh -> $114.32;
    TCO/yr 6,540.47; inferences/yr 2000 x 0.5 x 3600 x 8760 = 3.1536e10 -> $0.2074 per million;
    inferences/J at load 2000 / (5 x 20 x 1.2) = 16.67."""
    e = Economics(duty_cycle=0.5, pue=1.2)
    t = tco(5, unit_usd=3500, active_w=20, idle_w=9, host_w=0, served_ips=2000, econ=e)
    assert t.capex_usd == 17500
    assert t.capital_usd_per_year == pytest.approx(6426.15, abs=0.01)
    assert t.energy_kwh_per_year == pytest.approx(762.12, abs=0.01)
    assert t.energy_usd_per_year == pytest.approx(114.318, abs=0.001)
    assert t.tco_usd_per_year == pytest.approx(6540.47, abs=0.01)
    assert t.usd_per_million_inferences == pytest.approx(6540.47 / 31536.0, rel=1e-5)
    assert t.inferences_per_joule == pytest.approx(16.6667, abs=1e-4)
    arr = tco_per_year_array(np.array([5.0]), unit_usd=3500, active_w=20, idle_w=9, host_w=0, econ=e)
    assert arr[0] == pytest.approx(t.tco_usd_per_year)


def test_host_share_counts_in_capital_and_power() -> None:
    """One U50 at $8,000 + $2,000 host share, 50 W + 40 W host, duty 1, PUE 1, $0.10/kWh, r = 0, 2 years:
    capital/yr 10,000 / 2 = 5,000; energy 90 W x 8.76 = 788.4 kWh -> $78.84."""
    e = Economics(electricity_usd_per_kwh=0.10, discount_rate=0.0, lifetime_years=2)
    t = tco(1, unit_usd=10000, active_w=50, idle_w=18, host_w=40, served_ips=100, econ=e)
    assert t.capital_usd_per_year == 5000 and t.energy_usd_per_year == pytest.approx(78.84)


PROBES = [
    {"qps": 500.0, "p99_ms": 4.0, "offered_load": 0.3},
    {"qps": 1000.0, "p99_ms": 8.0, "offered_load": 0.6},
    {"qps": 1500.0, "p99_ms": 20.0, "offered_load": 0.9},
]


def test_interpolation_between_probes() -> None:
    """Bound 10 ms: 1000 q/s met it (8 ms), 1500 did not (20 ms): 1000 + (10 - 8) x 500 / 12 = 1083.3;
    the bracket is [1000, 1500]. Bound 6 ms: between 500 (4 ms) and 1000 (8 ms): 500 + 2 x 500 / 4 = 750."""
    b = server_capacity(PROBES, 10.0)
    assert b is not None and b.point == pytest.approx(1083.333, abs=1e-3) and (b.low, b.high) == (1000, 1500)
    assert server_capacity(PROBES, 6.0).point == pytest.approx(750.0)  # type: ignore[union-attr]


def test_never_extrapolated_past_the_last_probe_that_met_the_bound() -> None:
    """Bound 50 ms: every probe met it; capacity is the highest probe, 1500, not a trend beyond it."""
    b = server_capacity(PROBES, 50.0)
    assert b is not None and b.point == b.low == b.high == 1500.0


def test_saturated_probe_is_not_interpolated_towards_and_none_met() -> None:
    """A probe above that failed only on offered load (p99 3 ms, load 1.2) gives no latency slope: the
    capacity stays at the last probe that met the bound. Bound 2 ms: no probe met it: None."""
    probes = [
        {"qps": 500.0, "p99_ms": 2.5, "offered_load": 0.5},
        {"qps": 900.0, "p99_ms": 3.0, "offered_load": 1.2},
    ]
    b = server_capacity(probes, 10.0)
    assert b is not None and b.point == 500.0 and b.high == 900.0
    assert server_capacity(PROBES, 2.0) is None


def test_probes_in_board_time() -> None:
    """An emulated probe at time_scale 0.5: wall 1000 q/s, 4 ms -> board 500 q/s, 8 ms."""
    p = probes_of({"probes": [{"qps": 1000, "latency_ms_p99": 4.0}]}, 0.5)
    assert p == [{"qps": 500.0, "p99_ms": 8.0, "offered_load": None}]


def test_md1_rule() -> None:
    """Constant service 1/mu plus the waiting tail exp(-theta t), theta: lam (e^(theta S) - 1) = theta.
    mu 400/s (S = 2.5 ms), bound 10 ms: capacity c with p99(c) = 10 ms exactly, between 0 and mu; a board
    whose one query takes 12.5 ms (mu 80/s) has none. Hand check at lam = 200/s, S = 2.5 ms: theta solves
    200 (e^(0.0025 theta) - 1) = theta -> theta ~ 503.2/s, wait p99 = ln(100)/theta ~ 9.15 ms, p99 ~ 11.65 ms."""
    assert _md1_p99_ms(200, 0.0025) == pytest.approx(11.65, abs=0.05)
    c = queue_capacity(400, 10)
    assert 0 < c < 200 and _md1_p99_ms(c, 0.0025) == pytest.approx(10, abs=0.01)
    assert queue_capacity(80, 10) == 0.0
    assert queue_capacity(400, 20) > c  # a looser bound carries more


def test_bootstrap_is_seeded_and_prediction_wider() -> None:
    a = unc.run_draws([100.0, 110.0, 105.0], [100.0, 110.0, 105.0], unc.generator(1, "x"), 500, 2.0)
    b = unc.run_draws([100.0, 110.0, 105.0], [100.0, 110.0, 105.0], unc.generator(1, "x"), 500, 2.0)
    assert np.array_equal(a, b) and a.min() >= 100 and a.max() <= 110
    p = unc.prediction_draws(105.0, 12.0, unc.generator(1, "y"), 2000)
    lo, hi = unc.interval(p)
    assert hi - lo > np.ptp(a)
    # the median |log error| is the stated error
    assert np.median(np.abs(np.log(p / 105.0))) == pytest.approx(np.log(1.12), rel=0.1)
    assert unc.p_less(np.array([1.0, 2.0]), np.array([2.0, 2.0])) == 0.75
