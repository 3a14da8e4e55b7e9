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
4. stop after ``max_probes`` probes, or once ``(hi - lo) / lo`` is within ``REL_TOL`` (5 %);
5. stop at once when a failed probe is ``unreachable``: its service time alone (measured by the SUT, no
   queueing) at the bound's percentile is above the bound. A query's latency is at least its service time,
   so no lower load can pass, and shrinking further only costs time: LoadGen still issues
   ``min_query_count`` queries, so each halving doubles the probe (64 queries at 0.45/s take 142 s) until
   the farm's timeout kills the agent as hung and marks a healthy board bad.

A board whose warmup already shows every inference above the bound gets one probe, at a light load
(:func:`capped_start`), which confirms it with LoadGen's own figures and logs.

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


def capped_start(qps, fastest_ns, bound_ms):
    """``(qps, why)``: the first probe's QPS, lowered to 70 % of the capacity when even the warmup's fastest
    inference (``fastest_ns``) is above the bound (no load can pass, so the one probe should be short);
    ``why`` is None when nothing was changed."""
    if not fastest_ns or fastest_ns / 1e6 <= bound_ms:
        return qps, None
    light = START_FRACTION * 1e9 / float(fastest_ns)
    if qps <= light:
        return qps, None
    return light, "capped: the warmup's fastest inference (%.4g ms) is above the %g ms bound" % (
        fastest_ns / 1e6,
        bound_ms,
    )


def search(probe, first_qps, max_probes, rel_tol=REL_TOL):
    """Run at most ``max_probes`` probes; ``probe(qps)`` returns a dict with at least ``passed`` (bool), and
    ``unreachable`` (bool) when no lower load can pass either: the search then stops there.

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
        if outcome.get("unreachable") and not outcome.get("passed"):
            break
        if lo is None:
            qps = hi * SHRINK
        elif hi is None:
            qps = lo * GROWTH
        else:
            if (hi - lo) / lo <= rel_tol:
                break
            qps = (lo + hi) / 2.0
    return best, probes
