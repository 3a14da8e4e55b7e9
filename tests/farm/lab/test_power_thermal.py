"""Power and thermal model maths (farm/lab/physics/power.py, farm/lab/physics/thermal.py)."""

from __future__ import annotations

import math

import pytest

from farm.inventory import PowerModel, ThermalModel
from farm.lab.physics.power import board_power_w
from farm.lab.physics.thermal import (
    clock_fraction,
    steady_state_c,
    step_temperature,
    time_to_reach_s,
    update_throttle,
)

POWER = PowerModel(static_w=9.0, dynamic_w=12.0)
THERMAL = ThermalModel(
    ambient_c=25, r_th_c_per_w=1.6, tau_s=100, limit_c=100, throttle_clock_fraction=0.5, hysteresis_c=3
)


def test_power_is_static_plus_dynamic_times_utilisation():
    assert board_power_w(POWER, 0.0) == 9.0
    assert board_power_w(POWER, 1.0) == 21.0
    assert board_power_w(POWER, 0.25) == pytest.approx(12.0)
    # out-of-range utilisation is clamped; a throttled clock halves the dynamic part
    assert board_power_w(POWER, 1.7) == 21.0
    assert board_power_w(POWER, -1) == 9.0
    assert board_power_w(POWER, float("nan")) == 9.0
    assert board_power_w(POWER, 1.0, clock_fraction=0.5) == pytest.approx(15.0)


def test_steady_state_is_ambient_plus_r_th_times_power():
    assert steady_state_c(THERMAL, 21.0) == pytest.approx(25 + 1.6 * 21)
    assert steady_state_c(THERMAL, 21.0, ambient_c=40) == pytest.approx(40 + 1.6 * 21)
    temp = 25.0
    for _ in range(200):  # 20 time constants in 10 s steps
        temp = step_temperature(THERMAL, temp, 21.0, 10.0)
    assert temp == pytest.approx(25 + 1.6 * 21, abs=1e-6)


def test_time_constant_and_exact_step():
    target = steady_state_c(THERMAL, 21.0)
    # after one time constant the board has covered 1 - 1/e of the way
    after_tau = step_temperature(THERMAL, 25.0, 21.0, THERMAL.tau_s)
    assert (after_tau - 25.0) / (target - 25.0) == pytest.approx(1 - math.exp(-1))
    # the step is exact: one big step equals many small ones
    small = 25.0
    for _ in range(1000):
        small = step_temperature(THERMAL, small, 21.0, 0.3)
    assert small == pytest.approx(step_temperature(THERMAL, 25.0, 21.0, 300.0), rel=1e-12)
    assert step_temperature(THERMAL, 50.0, 21.0, 0.0) == 50.0
    assert time_to_reach_s(THERMAL, 25.0, after_tau, 21.0) == pytest.approx(THERMAL.tau_s)
    assert time_to_reach_s(THERMAL, 25.0, target + 1, 21.0) is None  # never above the steady state


def test_throttle_with_hysteresis():
    assert not update_throttle(THERMAL, False, 99.9)
    assert update_throttle(THERMAL, False, 100.1)  # above the limit: throttle
    assert update_throttle(THERMAL, True, 98.0)  # still within the hysteresis band: stay throttled
    assert update_throttle(THERMAL, True, 97.01)
    assert not update_throttle(THERMAL, True, 96.9)  # 3 C below the limit: back to nominal
    assert not update_throttle(THERMAL, False, 98.0)
    assert clock_fraction(THERMAL, True) == 0.5 and clock_fraction(THERMAL, False) == 1.0


def _run(thermal: ThermalModel, ambient_c: float, steps: int = 3000) -> tuple[list[float], list[bool]]:
    temp, throttled, temps, states = 80.0, False, [], []
    for _ in range(steps):  # 1 s steps at full load
        power = board_power_w(POWER, 1.0, clock_fraction(thermal, throttled))
        temp = step_temperature(thermal, temp, power, 1.0, ambient_c)
        throttled = update_throttle(thermal, throttled, temp)
        temps.append(temp)
        states.append(throttled)
    return temps, states


def test_throttling_stays_on_when_half_clock_is_still_too_hot():
    # ambient 75 C: full clock settles at 75 + 1.6 x 21 = 108.6 C, half clock at 75 + 1.6 x 15 = 99 C,
    # above the 95 - 3 C band: once throttled, the board stays throttled.
    temps, states = _run(THERMAL.model_copy(update={"limit_c": 95.0}), 75.0)
    first = states.index(True)
    assert all(states[first:])
    assert temps[-1] == pytest.approx(99.0, abs=0.01)


def test_throttling_limit_cycle_with_hysteresis():
    # ambient 70 C: full clock settles at 103.6 C (> 100: throttles), half clock at 94 C (< 97: recovers),
    # so the board cycles between the band's edges and never runs away.
    temps, states = _run(THERMAL, 70.0)
    switches = sum(a != b for a, b in zip(states, states[1:], strict=False))
    assert switches >= 4
    settled = temps[500:]
    assert max(settled) < 100.0 + 0.2 and min(settled) > 97.0 - 0.2
