"""Board power model: P = static_w + dynamic_w x utilisation x clock fraction (catalog ``power:``).

Dynamic power of CMOS logic scales with the clock (P_dyn ~ a C V^2 f), so a board throttled to half its
clock draws half the dynamic power at the same busy fraction. Voltage scaling is not modelled.
"""

from __future__ import annotations

from farm.inventory import PowerModel


def clamp_utilisation(utilisation: float) -> float:
    """Utilisation as a fraction in [0, 1] (anything unreadable or negative counts as idle)."""
    if utilisation != utilisation:  # NaN
        return 0.0
    return min(1.0, max(0.0, float(utilisation)))


def board_power_w(model: PowerModel, utilisation: float, clock_fraction: float = 1.0) -> float:
    """Board power in W at this accelerator utilisation (0..1) and clock (fraction of nominal)."""
    return model.static_w + model.dynamic_w * clamp_utilisation(utilisation) * max(0.0, clock_fraction)
