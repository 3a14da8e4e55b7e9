"""Capacity at the SLA: how much of the load one board carries, from what its runs (or the model) say.

Rules (docs/procurement.md):

- **Server runs**: the probes of the bounded search (provenance.environment.server_search) are re-read
  against the asked bound, whatever bound the sweep searched with. A probe *meets* it when its p99 is within
  the bound and its offered load was below 1. Capacity is the highest probe that meets it, raised by linear
  interpolation (in p99) towards the next probe above it when that probe failed on latency; never beyond the
  highest probed QPS that met the bound when no probe above it failed (no extrapolation), and never raised
  towards a probe that failed only on its offered load (saturation: its p99 says nothing).
- **Estimate from SingleStream/Offline** (no Server run): only when the SingleStream p99 is within the
  bound; capacity = the largest arrival rate at which an M/D/1 queue (Poisson arrivals, constant service
  1/mu with mu the Offline throughput, else the SingleStream one: a DPU's service time is nearly constant)
  keeps its p99 response, service + the waiting time's exponential tail (Cramer-Lundberg, constant 1),
  within the bound. The constant 1 overstates the wait, so this is conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

LN100 = math.log(100.0)


@dataclass(frozen=True)
class Bracket:
    """One run's capacity at the bound: ``point`` (interpolated), ``low`` (the highest probe that met the
    bound: measured) and ``high`` (the lowest probe above it that failed; ``low`` when there was none)."""

    point: float
    low: float
    high: float
    note: str = ""


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def probes_of(search: dict[str, Any] | None, time_scale: float = 1.0) -> list[dict[str, float | None]]:
    """The probes as (qps, p99_ms, offered_load), in board time: an emulated board's wall-clock probe figures
    times / divided by its ``time_scale`` (docs/scenarios.md)."""
    out = []
    scale = time_scale if time_scale and 0 < time_scale <= 1 else 1.0
    for p in (search or {}).get("probes") or []:
        if not isinstance(p, dict):
            continue
        qps = _num(p.get("qps"))
        p99 = _num(p.get("latency_ms_p99"))
        if p99 is None and _num((search or {}).get("latency_percentile")) == 99.0:
            p99 = _num(p.get("latency_ms_at_percentile"))
        if qps is None or qps <= 0:
            continue
        out.append(
            {
                "qps": qps * scale,
                "p99_ms": None if p99 is None else p99 / scale,
                "offered_load": _num(p.get("offered_load")),
            }
        )
    return sorted(out, key=lambda p: p["qps"])


def server_capacity(probes: list[dict[str, float | None]], bound_ms: float) -> Bracket | None:
    """The capacity at ``bound_ms`` from one run's probes (see the module docstring); None when no probe
    met the bound."""

    def meets(p: dict[str, float | None]) -> bool:
        load = p["offered_load"]
        return p["p99_ms"] is not None and p["p99_ms"] <= bound_ms and (load is None or load < 1.0)

    good = [p for p in probes if meets(p)]
    if not good:
        return None
    lo = max(good, key=lambda p: p["qps"])
    above = [p for p in probes if p["qps"] > lo["qps"]]
    if not above:
        return Bracket(
            lo["qps"], lo["qps"], lo["qps"], "no probe above the highest that met the bound: not extrapolated"
        )
    hi = min(above, key=lambda p: p["qps"])
    if hi["p99_ms"] is None or hi["p99_ms"] <= bound_ms or lo["p99_ms"] is None:
        # failed on its offered load (saturated) or has no p99: nothing to interpolate on
        return Bracket(
            lo["qps"], lo["qps"], hi["qps"], "the probe above failed on offered load: not interpolated"
        )
    p1, p2 = float(lo["p99_ms"]), float(hi["p99_ms"])
    point = lo["qps"] + (bound_ms - p1) * (hi["qps"] - lo["qps"]) / (p2 - p1)
    return Bracket(point, lo["qps"], hi["qps"], "interpolated between probes")


def _md1_p99_ms(lam: float, service_s: float) -> float:
    """The p99 response time (ms) of an M/D/1 queue: constant service plus the waiting time's exponential
    tail P(W > t) <= exp(-theta t) (Cramer-Lundberg; theta the positive root of lam (e^(theta S) - 1) =
    theta), taking the tail's constant as 1, which overstates the wait."""
    if lam <= 0:
        return service_s * 1000.0
    if lam * service_s >= 1:
        return math.inf

    def f(theta: float) -> float:
        return lam * math.expm1(theta * service_s) - theta

    lo, hi = 1e-9, 1.0 / service_s
    while f(hi) < 0:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return (service_s + LN100 / hi) * 1000.0


def queue_capacity(mu: float, bound_ms: float) -> float:
    """The largest arrival rate at which a board serving ``mu`` queries/s one at a time (constant service
    S = 1/mu, Poisson arrivals: M/D/1, the Server scenario's model) keeps its p99 response within the bound
    B; 0 when one query alone takes longer. Conservative: the waiting tail's constant is taken as 1.

    Closed form: p99 = S + ln(100)/theta <= B needs theta >= theta* = ln(100)/(B - S), and theta falls as
    the load rises, so the largest load has theta = theta*: lambda = theta* / (e^(theta* S) - 1)."""
    if mu <= 0 or bound_ms <= 0:
        return 0.0
    service_s, bound_s = 1.0 / mu, bound_ms / 1000.0
    if bound_s <= service_s:
        return 0.0
    theta = LN100 / (bound_s - service_s)
    return theta / math.expm1(theta * service_s)
