"""The bounded search for MLPerf Server's headline: the highest target QPS whose latency at the target
percentile (p99 by default) stays under the latency bound.

Each probe is one LoadGen Server test (Poisson arrivals at the probed QPS, for ``min_duration_ms``), so
the search's cost is bounded by ``max_probes`` tests; a probe above the SUT's capacity also lasts as long as
its queue takes to drain (about ``min_duration x qps / capacity``).

Strategy (pure logic here; the probe itself is a callable, so it is tested without LoadGen):

1. start at ``start_qps`` (the sweep's ``server_target_qps``, else 70 % of the capacity estimated from the
   warmup's service time: under a loose bound the answer is close to capacity, and 70 % usually passes);
2. while no probe has failed, grow by ``GROWTH`` (x1.5); while none has passed, shrink by half;
3. once one passed (lo) and one failed (hi), bisect between them;
4. stop after ``max_probes`` probes, or once ``(hi - lo) / lo`` is within ``REL_TOL`` (5 %).

A probe passes when LoadGen says its latency constraint was met (the latency at the percentile is under
the bound) and its offered load (arrival rate x mean service time) is below 1: a short probe above
capacity can end before its backlog breaks the bound, and would otherwise pass.

The answer is the highest passing probe (never an interpolation): its own LoadGen result is the run's.
"""

from __future__ import annotations

GROWTH = 1.5
SHRINK = 0.5
REL_TOL = 0.05
START_FRACTION = 0.7


def start_qps(configured, service_ns):
    """``(qps, source)``: the configured start, else 70 % of 1 / the warmup's typical service time."""
    if configured:
        return float(configured), "config"
    if service_ns:
        return START_FRACTION * 1e9 / float(service_ns), "warmup: 0.7 x 1 / median service time"
    return 10.0, "default"


def search(probe, first_qps, max_probes, rel_tol=REL_TOL):
    """Run at most ``max_probes`` probes; ``probe(qps)`` returns a dict with at least ``passed`` (bool).

    Returns ``(best, probes)``: the passing probe with the highest QPS (None when none passed) and every
    probe's dict in the order run, each given ``qps`` and ``step`` (1-based).
    """
    if max_probes < 1:
        raise ValueError("max_probes must be >= 1")
    probes = []
    lo = hi = None
    best = None
    qps = float(first_qps)
    while len(probes) < max_probes:
        outcome = dict(probe(qps))
        outcome["qps"] = qps
        outcome["step"] = len(probes) + 1
        probes.append(outcome)
        if outcome.get("passed"):
            if lo is None or qps > lo:
                lo, best = qps, outcome
        elif hi is None or qps < hi:
            hi = qps
        if lo is None:
            qps = hi * SHRINK
        elif hi is None:
            qps = lo * GROWTH
        else:
            if (hi - lo) / lo <= rel_tol:
                break
            qps = (lo + hi) / 2.0
    return best, probes
