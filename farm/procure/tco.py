"""Sizing and cost: how many boards, what they cost to buy and to run, per year and per inference.

The formulas (docs/procurement.md), kept as plain functions so tests check them against hand-worked sums:

- boards N = ceil(demand / (capacity x (1 - headroom))) + spares, spares = a count or ceil(pct x N0)
- capital recovery factor CRF = r (1 + r)^n / ((1 + r)^n - 1) (1 / n when r = 0)
- capex = N x (list price + host share); capital per year = capex x CRF
- energy kWh/yr = N x (P_active x duty + P_idle x (1 - duty) + P_host) x 8760 / 1000 x PUE
- TCO per year = capital per year + energy kWh/yr x $/kWh
- $ per million inferences = TCO per year / (inferences served per year / 1e6),
  inferences per year = served inferences/s x duty x 3600 x 8760
- inferences per joule = served inferences/s / (N x (P_active + P_host) x PUE) at the stated load
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from farm.procure.costs import HOURS_PER_YEAR, Economics


def crf(rate: float, years: float) -> float:
    """The capital recovery factor: the share of a purchase paid each year over ``years`` at ``rate``."""
    if years <= 0:
        raise ValueError("years must be positive")
    if rate == 0:
        return 1.0 / years
    g = (1.0 + rate) ** years
    return rate * g / (g - 1.0)


def spares_for(base: int, econ: Economics) -> int:
    return int(econ.spares) + (math.ceil(base * econ.spares_pct / 100.0 - 1e-9) if econ.spares_pct else 0)


def boards_needed(demand: float, capacity: float, econ: Economics) -> int:
    """N for one capacity (math.inf-safe: a capacity of 0 needs no finite number: raises ValueError)."""
    if capacity <= 0:
        raise ValueError("a board with no capacity cannot serve the load")
    usable = capacity * (1.0 - econ.headroom)
    base = math.ceil(demand / usable - 1e-9)
    return base + spares_for(base, econ)


def boards_needed_array(demand: float, capacity: np.ndarray, econ: Economics) -> np.ndarray:
    """N per bootstrap draw (float array; inf where a draw has no capacity)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.ceil(demand / (capacity * (1.0 - econ.headroom)) - 1e-9)
    base = np.where(capacity > 0, base, np.inf)
    spares = econ.spares + (np.ceil(base * econ.spares_pct / 100.0 - 1e-9) if econ.spares_pct else 0.0)
    return base + spares


@dataclass(frozen=True)
class Tco:
    boards: float
    capex_usd: float
    capital_usd_per_year: float
    energy_kwh_per_year: float
    energy_usd_per_year: float
    tco_usd_per_year: float
    usd_per_million_inferences: float | None
    inferences_per_joule: float | None

    def to_json(self) -> dict[str, float | None]:
        return asdict(self)


def tco(
    boards: float,
    *,
    unit_usd: float,
    active_w: float,
    idle_w: float,
    host_w: float,
    served_ips: float,
    econ: Economics,
    pue: float | None = None,
) -> Tco:
    """The yearly cost of ``boards`` boards serving ``served_ips`` inferences/s (see the module docstring)."""
    pue = econ.pue if pue is None else pue
    duty = econ.duty_cycle
    capex = boards * unit_usd
    capital = capex * crf(econ.discount_rate, econ.lifetime_years)
    watts = boards * (active_w * duty + idle_w * (1.0 - duty) + host_w)
    kwh = watts * HOURS_PER_YEAR / 1000.0 * pue
    energy = kwh * econ.electricity_usd_per_kwh
    total = capital + energy
    per_year = served_ips * duty * 3600.0 * HOURS_PER_YEAR
    load_w = boards * (active_w + host_w) * pue
    return Tco(
        boards=boards,
        capex_usd=capex,
        capital_usd_per_year=capital,
        energy_kwh_per_year=kwh,
        energy_usd_per_year=energy,
        tco_usd_per_year=total,
        usd_per_million_inferences=total / (per_year / 1e6) if per_year > 0 else None,
        inferences_per_joule=served_ips / load_w if load_w > 0 else None,
    )


def tco_per_year_array(
    boards: np.ndarray,
    *,
    unit_usd: float,
    active_w: float,
    idle_w: float,
    host_w: float,
    econ: Economics,
    pue: float | None = None,
) -> np.ndarray:
    """TCO per year per bootstrap draw (linear in N, so the same formula as :func:`tco`)."""
    pue = econ.pue if pue is None else pue
    duty = econ.duty_cycle
    per_board = (
        unit_usd * crf(econ.discount_rate, econ.lifetime_years)
        + ((active_w * duty + idle_w * (1.0 - duty) + host_w) * HOURS_PER_YEAR / 1000.0 * pue)
        * econ.electricity_usd_per_kwh
    )
    return boards * per_board
