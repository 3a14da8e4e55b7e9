"""One candidate's capacity at the SLA, as a point and seeded bootstrap draws: from its measured (or emulated)
runs by the workload's kind (Server probes, an M/D/1 estimate, Offline throughput, SingleStream p99), or from
the performance model's prediction with its held-out error. A reason (a string) when it cannot meet the SLA.

farm.procure.capacity holds the rules on one run's probes (pure arithmetic); this module applies them to a
board type's series of runs, with the uncertainty the ranking needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm import metrics
from farm.procure import uncertainty as unc
from farm.procure.capacity import Bracket, probes_of, queue_capacity, server_capacity
from farm.procure.evidence import Series
from farm.procure.predicted import Predicted
from farm.procure.workload import Workload


@dataclass
class Capacity:
    """A candidate's capacity: the point, its draws, what it rests on, the runs, and the inferences served
    per unit of demand."""

    point: float
    draws: np.ndarray
    basis: str
    run_ids: list[int]
    served_per_demand: float
    notes: list[str]


def _noise(name: str) -> float:
    return metrics.get(name).min_change_pct


def _ss_p99_reason(series: Series, bound: float) -> str | None:
    p99 = series.median("SingleStream", "latency_ms_p99")
    if p99 is not None and p99 > bound:
        return f"SingleStream p99 {p99:.3g} ms already exceeds the {bound:g} ms bound"
    return None


def measured_capacity(series: Series, w: Workload, rng: np.random.Generator, n: int) -> Capacity | str:
    batch = w.batch_size
    if w.kind == "server":
        bound = float(w.p99_ms or 0)
        reason = _ss_p99_reason(series, bound)
        if reason:
            return reason
        server = series.runs.get("Server", [])
        if server:
            brackets: list[tuple[Bracket, int]] = []
            lowest: list[str] = []
            for r in server:
                probes = probes_of(r.server_search, r.time_scale)
                if probes:
                    b = server_capacity(probes, bound)
                    if b is None:
                        first = probes[0]
                        lowest.append(f"{first['qps']:.4g}/s at p99 {first['p99_ms'] or float('nan'):.3g} ms")
                        b = Bracket(0.0, 0.0, probes[0]["qps"], "no probe met the bound")
                    brackets.append((b, r.run_id))
                else:
                    q, p99 = r.metrics.get("server_qps_max"), r.metrics.get("server_latency_ms_p99_at_max")
                    if q is not None and p99 is not None and p99 <= bound:
                        brackets.append((Bracket(q, q, q, "no probes stored: the run's max QPS"), r.run_id))
            if brackets and any(b.point > 0 for b, _ in brackets):
                points = sorted(b.point for b, _ in brackets)
                draws = unc.run_draws(
                    [b.low for b, _ in brackets],
                    [b.high for b, _ in brackets],
                    rng,
                    n,
                    _noise("server_qps_max"),
                )
                notes = sorted({b.note for b, _ in brackets if b.note})
                return Capacity(
                    float(np.median(points)), draws, "Server probes", [i for _, i in brackets], batch, notes
                )
            if brackets:
                return f"no Server probe met p99 <= {bound:g} ms (lowest: {', '.join(lowest[:3])})"
        ss = series.runs.get("SingleStream", [])
        if not ss:
            return "no Server or SingleStream run to bound the latency"
        off = series.runs.get("Offline", [])
        src = off if any("throughput_ips" in r.metrics for r in off) else ss
        mus = [r.metrics["throughput_ips"] / batch for r in src if "throughput_ips" in r.metrics]
        if not mus:
            return "no throughput figure to estimate a Server capacity"
        mu_draws = unc.run_draws(mus, mus, rng, n, _noise("throughput_ips"))
        mu = float(np.median(mus))
        point = queue_capacity(mu, bound)
        if point <= 0:
            return f"estimated Server capacity is 0: one query alone takes {1000 / mu:.3g} ms > {bound:g} ms"
        draws = np.array([queue_capacity(m, bound) for m in mu_draws])
        which = "Offline" if src is off else "SingleStream"
        return Capacity(
            point,
            draws,
            f"Server estimate (M/D/1 on {which} throughput; no Server run)",
            list(dict.fromkeys(r.run_id for r in ss + src)),  # src may be ss itself: each run once
            batch,
            ["no Server run: capacity estimated conservatively (M/D/1); a Server sweep would replace it"],
        )
    if w.kind == "offline":
        runs = [r for r in series.runs.get("Offline", []) if "throughput_ips" in r.metrics]
        basis = "Offline throughput"
        notes: list[str] = []
        if not runs:
            runs = [r for r in series.runs.get("SingleStream", []) if "throughput_ips" in r.metrics]
            basis = "SingleStream throughput (no Offline run: a lower bound)"
            notes = ["no Offline run: SingleStream throughput used, a lower bound of what the board sustains"]
        if not runs:
            return "no Offline or SingleStream run with a throughput"
        values = [r.metrics["throughput_ips"] for r in runs]
        draws = unc.run_draws(values, values, rng, n, _noise("throughput_ips"))
        return Capacity(float(np.median(values)), draws, basis, [r.run_id for r in runs], 1.0, notes)
    bound = float(w.latency_ms or 0)
    runs = [r for r in series.runs.get("SingleStream", []) if "latency_ms_p99" in r.metrics]
    if not runs:
        return "no SingleStream run"
    p99s = [r.metrics["latency_ms_p99"] for r in runs]
    if float(np.median(p99s)) > bound:
        return f"SingleStream p99 {float(np.median(p99s)):.3g} ms exceeds the {bound:g} ms bound"
    p99_draws = unc.run_draws(p99s, p99s, rng, n, _noise("latency_ms_p99"))
    p_meet = float(np.mean(p99_draws <= bound))
    notes = [] if p_meet >= 0.95 else [f"p99 within the bound in only {p_meet:.0%} of the bootstrap draws"]
    ips = [r.metrics["throughput_ips"] for r in runs if "throughput_ips" in r.metrics]
    per_stream = float(np.median(ips)) if ips else 1000.0 / float(np.median(p99s)) * batch
    return Capacity(1.0, np.ones(n), "SingleStream p99", [r.run_id for r in runs], per_stream, notes)


def predicted_capacity(p: Predicted, w: Workload, rng: np.random.Generator, n: int) -> Capacity | str:
    factor = unc.prediction_draws(1.0, p.error_pct, rng, n)
    margin = 1.0 + p.error_pct / 100.0
    if w.kind in ("server", "single_stream"):
        bound = float(w.bound_ms or 0)
        if p.latency_ms * margin > bound:
            return (
                f"predicted latency {p.latency_ms:.3g} ms (+{p.error_pct:g} % model error) exceeds the "
                f"{bound:g} ms bound"
            )
    if w.kind == "server":
        mu = p.fps_mt / w.batch_size
        point = queue_capacity(mu, bound)
        if point <= 0:
            return f"predicted Server capacity is 0: one query alone takes {1000 / mu:.3g} ms > {bound:g} ms"
        draws = np.array([queue_capacity(mu * f, bound) for f in factor])
        return Capacity(point, draws, "predicted (DPU model, M/D/1 Server rule)", [], w.batch_size, [])
    if w.kind == "offline":
        return Capacity(p.fps_mt, p.fps_mt * factor, "predicted (DPU model fps_mt)", [], 1.0, [])
    return Capacity(1.0, np.ones(n), "predicted (DPU model latency)", [], p.fps_st, [])
