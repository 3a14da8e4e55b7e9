"""First-order thermal model with throttling (catalog ``thermal:``).

    dT/dt = (T_ss - T) / tau,   T_ss = ambient_c + r_th_c_per_w x P

For a constant power over a step dt the exact solution is

    T(t + dt) = T_ss + (T(t) - T_ss) x exp(-dt / tau)

so the step is exact for any dt (the simulator may take large emulated steps at a small time scale).

Throttling: once T exceeds ``limit_c`` the accelerator clock drops to ``throttle_clock_fraction`` x nominal;
it returns to nominal only when T has fallen ``hysteresis_c`` below the limit.
"""

from __future__ import annotations

import math

from farm.inventory import ThermalModel


def steady_state_c(model: ThermalModel, power_w: float, ambient_c: float | None = None) -> float:
    """The temperature the board settles at under a constant power."""
    ambient = model.ambient_c if ambient_c is None else ambient_c
    return ambient + model.r_th_c_per_w * power_w


def step_temperature(
    model: ThermalModel, temp_c: float, power_w: float, dt_s: float, ambient_c: float | None = None
) -> float:
    """Temperature after ``dt_s`` seconds at constant ``power_w`` (exact exponential step)."""
    target = steady_state_c(model, power_w, ambient_c)
    if dt_s <= 0:
        return temp_c
    return target + (temp_c - target) * math.exp(-dt_s / model.tau_s)


def update_throttle(model: ThermalModel, throttled: bool, temp_c: float) -> bool:
    """Whether the clock is throttled after seeing ``temp_c`` (with hysteresis)."""
    if throttled:
        return temp_c > model.limit_c - model.hysteresis_c
    return temp_c > model.limit_c


def clock_fraction(model: ThermalModel, throttled: bool) -> float:
    """The accelerator clock as a fraction of nominal."""
    return model.throttle_clock_fraction if throttled else 1.0


def time_to_reach_s(
    model: ThermalModel, temp_from_c: float, temp_to_c: float, power_w: float, ambient_c: float | None = None
) -> float | None:
    """Seconds to go from one temperature to another at constant power (None if it is never reached)."""
    target = steady_state_c(model, power_w, ambient_c)
    start, end = temp_from_c - target, temp_to_c - target
    if start == 0 or end == 0 or (start > 0) != (end > 0) or abs(end) > abs(start):
        return 0.0 if start == end else None
    return model.tau_s * math.log(start / end)
