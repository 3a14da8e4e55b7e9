"""One target's figures in a comparison: its runs' stored metrics summarised as medians with bootstrap
intervals (from the repeats, else from one run's latency samples), the figures a run did not store derived
(perf/W, energy per inference, jitter), its flags and validity, and its accuracy beside its speed.

Apart from the selection (farm.queries.compare), which decides which runs form a target, and the verdicts
(farm.queries.compare_ratios), which compare targets: this is the one part that reads metric rows.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from farm import metrics
from farm.alerts.series import UNUSABLE_FLAGS
from farm.db.models import MetricRow, RunRow
from farm.queries.compare_ratios import ACCURACY, HEADLINE, Interval, SelectedRun, Target
from farm.regressions import bootstrap as bs


def summarise(
    s: Session,
    key: tuple[str, str, str],
    family: str,
    sweep_id: str,
    runs: list[SelectedRun],
    seed: int,
    n: int,
) -> Target:
    target, precision, source = key
    ids = sorted(r.id for r in runs)
    per_run: dict[int, dict[str, float]] = {i: {} for i in ids}
    names = (*HEADLINE, *ACCURACY)
    for run_id, name, value in s.execute(
        select(MetricRow.run_id, MetricRow.name, MetricRow.value).where(
            MetricRow.run_id.in_(ids), MetricRow.name.in_(names)
        )
    ):
        if value is not None and np.isfinite(value):
            per_run[run_id][name] = float(value)
    for m in per_run.values():
        _derive(m)
    values = {name: [per_run[i][name] for i in ids if name in per_run[i]] for name in names}
    label = "/".join(key)
    draws: dict[str, np.ndarray] = {}
    interval_from = "none"
    reported = [i for i in ids if per_run[i]]  # a run that stored nothing adds no repeat
    if len(reported) > 1:
        for name in HEADLINE:
            d = bs.median_draws(values[name], bs.generator(seed, label, name), n)
            if d is not None:
                draws[name] = d
        interval_from = "repeats" if draws else "none"
    elif reported:
        samples = s.scalar(select(RunRow.samples_ms).where(RunRow.id == reported[0])) or []
        draws = _sample_draws(per_run[reported[0]], [float(x) for x in samples], seed, label, n)
        interval_from = "latency samples (one run)" if draws else "none"
    summary: dict[str, Interval] = {}
    for name in HEADLINE:
        if not values[name]:
            continue
        iv = Interval(statistics.median(values[name]))
        if name in draws:
            iv.low, iv.high = bs.interval(draws[name])
        summary[name] = iv
    flags = sorted({f for r in runs for f in r.flags})
    noisy: dict[str, int] = {}
    for r in runs:
        for prefix in {f.split(":")[0] + ":" for f in r.flags if f.startswith(UNUSABLE_FLAGS)}:
            noisy[prefix] = noisy.get(prefix, 0) + 1
    invalid = sum(r.result_valid is False for r in runs)
    valid = False if invalid else (None if any(r.result_valid is None for r in runs) else True)
    return Target(
        target, family, precision, source, sweep_id, ids, flags, valid, invalid, noisy, summary,
        _accuracy(precision, values, [r.agreement for r in runs]), interval_from, draws,
    )  # fmt: skip


def _derive(m: dict[str, float]) -> None:
    """perf/W, energy per inference and jitter from one run's own figures where it did not store them."""
    watts, ips = m.get("power_w"), m.get("throughput_ips")
    if watts and ips:
        m.setdefault("inferences_per_joule", ips / watts)
        m.setdefault("energy_mj_per_inference", 1000.0 * watts / ips)
    if "latency_ms_p50" in m and "latency_ms_p99" in m:
        m["latency_jitter_ms"] = m["latency_ms_p99"] - m["latency_ms_p50"]


def _sample_draws(
    m: dict[str, float], samples: list[float], seed: int, label: str, n: int
) -> dict[str, np.ndarray]:
    """One run: its latency samples carry the within-run spread (percentiles resampled; the throughput by
    its mean latency); power has no samples here and stays a point, so perf/W moves with throughput."""
    out: dict[str, np.ndarray] = {}
    if len(samples) < 20:
        return out
    ordered = np.sort(np.asarray(samples))
    for name, q in (("latency_ms_p50", 0.5), ("latency_ms_p99", 0.99)):
        d = bs.quantile_draws(samples, q, bs.generator(seed, label, name), n)
        at = float(ordered[min(len(ordered) - 1, int(len(ordered) * q))])
        if d is not None and name in m and at > 0:
            out[name] = d * (m[name] / at)  # the spread of the samples, around the stored figure
    if "latency_ms_p50" in out and "latency_ms_p99" in out:
        out["latency_jitter_ms"] = out["latency_ms_p99"] - out["latency_ms_p50"]
    means = bs.mean_draws(samples, bs.generator(seed, label, "mean"), n)
    if means is not None and "throughput_ips" in m and float(np.mean(samples)) > 0:
        out["throughput_ips"] = m["throughput_ips"] * float(np.mean(samples)) / np.maximum(means, 1e-12)
        watts = m.get("power_w")
        if watts:
            out["inferences_per_joule"] = out["throughput_ips"] / watts
            out["energy_mj_per_inference"] = 1000.0 * watts / out["throughput_ips"]
    return out


def _accuracy(
    precision: str, values: dict[str, list[float]], agreements: list[float | None]
) -> dict[str, Any]:
    """Top-1 accuracy, else INT8-vs-FP32 agreement on the run's inputs, else the artifact's compile-time
    agreement; an FP32 target without a labelled set is the reference itself."""
    for name in ACCURACY:
        if values[name]:
            return {"metric": name, "label": metrics.label(name), "value": statistics.median(values[name])}
    found = [a for a in agreements if a is not None]
    if precision == "int8" and found:
        name = "int8_top1_agreement"
        return {"metric": name, "label": metrics.label(name), "value": statistics.median(found)}
    if precision == "fp32":
        return {"metric": None, "label": "the FP32 reference", "value": None}
    return {"metric": None, "label": "not measured", "value": None}
