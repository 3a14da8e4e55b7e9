"""What-ifs on a made decision, re-priced from each candidate's basis (its capacity draws, price and power)
without going back to the database: the cheapest mix of two board types, and how the ranking moves when one
assumption moves (electricity, demand, lifetime, headroom) with its break-even points.

Apart from the ranking (farm.procure.rank): these only re-price; `farm procure --vary` and the dashboard call
them on a Decision that decide() returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from farm.procure.costs import Economics
from farm.procure.decision import Candidate, Decision, Mix
from farm.procure.tco import boards_needed, spares_for, tco, tco_per_year_array
from farm.procure.workload import ProcureError


def _per_board_year(c: Candidate, econ: Economics) -> float:
    b = c._basis
    assert b is not None
    return float(tco_per_year_array(np.array([1.0]), unit_usd=b.unit_usd, active_w=b.active_w,
                                    idle_w=b.idle_w, host_w=b.host_w, econ=econ, pue=b.pue)[0])  # fmt: skip


def cheapest_mix(decision: Decision, max_types: int = 6, max_steps: int = 100_000) -> Mix | None:
    """The cheapest pair of board types (exact: every count of the first, the fewest of the second that
    covers the rest) among the ``max_types`` cheapest single types; None unless it beats the best single
    type. Spares are counted per type used (a spare replaces a board of its own type)."""
    econ, w = decision.economics, decision.workload
    if econ is None or w is None or len(decision.candidates) < 2:
        return None
    top = [c for c in decision.candidates if c._basis is not None][:max_types]
    best_single = decision.candidates[0]
    best: tuple[float, dict[str, int], float] | None = None
    for i, a in enumerate(top):
        for b in top[i + 1 :]:
            if a.board_type == b.board_type:
                continue
            ua = a._basis.capacity * (1 - econ.headroom)  # type: ignore[union-attr]
            ub = b._basis.capacity * (1 - econ.headroom)  # type: ignore[union-attr]
            if ua <= 0 or ub <= 0:
                continue
            limit = math.ceil(w.demand / ua - 1e-9)
            if limit > max_steps:
                continue
            ca, cb = _per_board_year(a, econ), _per_board_year(b, econ)
            for na in range(1, limit):
                nb = max(1, math.ceil((w.demand - na * ua) / ub - 1e-9))
                total_a, total_b = na + spares_for(na, econ), nb + spares_for(nb, econ)
                cost = total_a * ca + total_b * cb
                if best is None or cost < best[0]:
                    capex = total_a * a.unit_price_usd + total_b * b.unit_price_usd
                    best = (cost, {a.label: total_a, b.label: total_b}, capex)
    if best is None or best[0] >= best_single.tco_usd_per_year - 1e-6:
        return None
    return Mix(best[1], best[0], best[2], best_single.tco_usd_per_year - best[0])


VARY = ("electricity", "qps", "lifetime", "headroom")


@dataclass
class Sensitivity:
    vary: str
    values: list[float]
    rows: list[dict[str, Any]]  # per value: the cheapest and every candidate's TCO per year
    break_even: list[dict[str, Any]]  # where the cheapest changes

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _apply(vary: str, value: float, econ: Economics, demand: float) -> tuple[Economics, float]:
    if vary == "electricity":
        return replace(econ, electricity_usd_per_kwh=value), demand
    if vary == "lifetime":
        return replace(econ, lifetime_years=value), demand
    if vary == "headroom":
        return replace(econ, headroom=value), demand
    return econ, value


def _reprice(decision: Decision, vary: str, value: float) -> dict[str, float]:
    assert decision.economics is not None and decision.workload is not None
    econ, demand = _apply(vary, value, decision.economics, decision.workload.demand)
    out = {}
    for c in decision.candidates:
        b = c._basis
        assert b is not None
        n = boards_needed(demand, b.capacity, econ)
        out[c.label] = tco(n, unit_usd=b.unit_usd, active_w=b.active_w, idle_w=b.idle_w, host_w=b.host_w,
                           served_ips=demand * b.served_per_demand, econ=econ, pue=b.pue).tco_usd_per_year  # fmt: skip
    return out


def default_values(vary: str, decision: Decision) -> list[float]:
    assert decision.workload is not None
    if vary == "electricity":
        return [0.05, 0.10, 0.15, 0.20, 0.30, 0.40, 0.50]
    if vary == "lifetime":
        return [1, 2, 3, 4, 5, 6, 7]
    if vary == "headroom":
        return [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    d = decision.workload.demand
    return [d * f for f in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)]


def sensitivity(decision: Decision, vary: str, values: list[float] | None = None) -> Sensitivity:
    """How the ranking moves when one assumption moves (electricity $/kWh, the demand, the lifetime in
    years, the headroom), with the break-even points where the cheapest option changes (bisection
    between the grid values, to 0.1 % of the range)."""
    if vary not in VARY:
        raise ProcureError(f"unknown parameter {vary!r} (one of {', '.join(VARY)})", field="--vary")
    if not decision.candidates:
        raise ProcureError("no candidate meets the workload: nothing to vary", field="--vary")
    grid = sorted(values or default_values(vary, decision))
    for v in grid:
        ok = {"electricity": v >= 0, "lifetime": 0 < v <= 30, "headroom": 0 <= v < 1, "qps": v > 0}[vary]
        if not ok or not math.isfinite(v):
            raise ProcureError(f"{v!r} is out of range for {vary}", field="--values")
    rows = []
    for v in grid:
        costs = _reprice(decision, vary, v)
        ranked = sorted(costs, key=costs.__getitem__)
        rows.append({"value": v, "cheapest": ranked[0], "ranking": ranked, "tco_usd_per_year": costs})
    breaks = []
    for a, b in zip(rows, rows[1:], strict=False):
        if a["cheapest"] == b["cheapest"]:
            continue
        lo, hi = a["value"], b["value"]
        tol = (grid[-1] - grid[0]) * 1e-3 or 1e-9
        while hi - lo > tol:
            mid = (lo + hi) / 2
            costs = _reprice(decision, vary, mid)
            if min(costs, key=costs.__getitem__) == a["cheapest"]:
                lo = mid
            else:
                hi = mid
        costs = _reprice(decision, vary, hi)
        breaks.append({"at": hi, "from": a["cheapest"], "to": min(costs, key=costs.__getitem__)})
    return Sensitivity(vary, grid, rows, breaks)
