"""What a comparison holds (targets with their intervals, ratios, winners; the metrics it shows and the
ratios it takes) and the verdicts on it: each FPGA over each CPU and GPU baseline, and which target wins
each metric, from the targets' bootstrap draws.

Pure (numpy over summarised targets, no database): apart from the selection (farm.queries.compare) and the
per-target figures (farm.queries.compare_figures) so the statistics can be read, and tested, on their own.
farm.queries.compare re-exports every public name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from farm import metrics
from farm.errors import FarmError
from farm.regressions import bootstrap as bs

#: The headline metrics of a comparison, in the order shown (all in the catalog, farm/metrics.py).
HEADLINE = (
    "latency_ms_p50",
    "latency_ms_p99",
    "throughput_ips",
    "power_w",
    "inferences_per_joule",
    "energy_mj_per_inference",
    "latency_jitter_ms",
)
ACCURACY = ("accuracy_top1", "int8_fp32_top1_agreement")
#: "Best available precision": the most faithful one a target ran (an FPGA's DPU runs INT8 only).
PRECISION_ORDER = ("fp32", "fp16", "bf16", "int8")
SCENARIO_ORDER = ("SingleStream", "MultiStream", "Server", "Offline")


@dataclass(frozen=True)
class RatioSpec:
    """One FPGA-over-baseline ratio, oriented so that above 1 the FPGA is better."""

    name: str
    metric: str
    invert: bool  # baseline / FPGA (a lower-is-better metric)
    words: tuple[str, str]  # the verdict when the FPGA is better, when it is worse
    meaning: str


RATIOS = (
    RatioSpec("speedup_p50", "latency_ms_p50", True, ("faster", "slower"), "baseline p50 / FPGA p50 latency"),
    RatioSpec("speedup_p99", "latency_ms_p99", True, ("faster", "slower"), "baseline p99 / FPGA p99 latency"),
    RatioSpec("throughput", "throughput_ips", False, ("faster", "slower"), "FPGA / baseline throughput"),
    RatioSpec(
        "perf_per_watt", "inferences_per_joule", False, ("better", "worse"), "FPGA / baseline inferences/J"
    ),
    RatioSpec(
        "energy_per_inference",
        "energy_mj_per_inference",
        True,
        ("better", "worse"),
        "baseline / FPGA energy per inference",
    ),
)
#: What the "which wins" summary ranks.
WINNER_METRICS = (
    "latency_ms_p50",
    "throughput_ips",
    "inferences_per_joule",
    "energy_mj_per_inference",
    "latency_jitter_ms",
)
UNDISTINGUISHED = "not distinguishable"


class CompareError(FarmError):
    """A selection the database cannot answer (unknown model, sweep, scenario ...): bad input, exit 2."""


@dataclass
class Interval:
    median: float | None
    low: float | None = None
    high: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return {"median": self.median, "low": self.low, "high": self.high}


@dataclass
class Target:
    """One board type at one precision and source, from one sweep: its repeats summarised."""

    target: str
    family: str
    precision: str
    source: str
    sweep_id: str
    run_ids: list[int]
    flags: list[str]
    valid: bool | None  # False: some run LoadGen INVALID; None: validity unknown
    invalid_runs: int
    noisy: dict[str, int]  # noise flag prefix -> runs flagged with it
    metrics: dict[str, Interval]
    accuracy: dict[str, Any]
    interval_from: str  # repeats | latency samples (one run) | none
    draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return f"{self.target} {self.precision}" + (" (emulated)" if self.source == "emulated" else "")

    def value(self, name: str) -> float | None:
        return self.metrics[name].median if name in self.metrics else None

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "label": self.label,
            "family": self.family,
            "precision": self.precision,
            "source": self.source,
            "sweep_id": self.sweep_id,
            "runs": len(self.run_ids),
            "run_ids": self.run_ids,
            "flags": self.flags,
            "valid": self.valid,
            "interval_from": self.interval_from,
            "metrics": {name: iv.to_json() for name, iv in self.metrics.items()},
            "accuracy": self.accuracy,
        }


@dataclass
class Ratio:
    fpga: str
    baseline: str
    fpga_label: str
    baseline_label: str
    metric: str
    meaning: str
    ratio: float | None
    low: float | None
    high: float | None
    verdict: str
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Comparison:
    selection: dict[str, Any]
    targets: list[Target]
    ratios: list[Ratio]
    winners: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "selection": self.selection,
            "targets": [t.to_json() for t in self.targets],
            "ratios": [r.to_json() for r in self.ratios],
            "winners": self.winners,
        }


@dataclass(frozen=True)
class SelectedRun:
    """One run the selection chose, with what its target's summary needs."""

    id: int
    target: str
    precision: str
    source: str
    sweep_id: str
    created_at: datetime
    result_valid: bool | None
    flags: tuple[str, ...]
    agreement: float | None


def ratios(targets: list[Target], *, seed: int = bs.SEED) -> list[Ratio]:
    """Each FPGA over each CPU and GPU baseline, per RATIOS: the ratio of medians, its bootstrap interval
    (the two sides' draws are independent) and the verdict: the interval above 1 (the FPGA is better),
    below 1, or containing 1 (not distinguishable)."""
    out = []
    for f in (t for t in targets if t.family == "fpga"):
        for b in (t for t in targets if t.family in ("cpu", "gpu")):
            common = _pair_warnings(f, b)
            for spec in RATIOS:
                fv, bv = f.value(spec.metric), b.value(spec.metric)
                if fv is None or bv is None or fv <= 0 or bv <= 0:
                    continue
                num, den = (bv, fv) if spec.invert else (fv, bv)
                fd, bd = f.draws.get(spec.metric), b.draws.get(spec.metric)
                warnings = list(common)
                low = high = None
                if fd is None and bd is None:
                    warnings.append("no interval: one run on each side and no latency samples for it")
                else:
                    if fd is None or bd is None:
                        side = f.label if fd is None else b.label
                        warnings.append(f"{side}: a point (one run, no samples): the interval is one-sided")
                    fd, bd = _paired(fd, fv, bd, bv)
                    low, high = bs.interval(bd / fd if spec.invert else fd / bd)
                out.append(
                    Ratio(
                        f.target,
                        b.target,
                        f.label,
                        b.label,
                        spec.name,
                        spec.meaning,
                        num / den,
                        low,
                        high,
                        verdict(low, high, spec.words),
                        warnings,
                    )  # fmt: skip
                )
    return out


def _paired(
    a: np.ndarray | None, a_point: float, b: np.ndarray | None, b_point: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two sides' draws of equal length, a side without draws held at its point, kept above zero."""
    n = len(a) if a is not None else len(b) if b is not None else 1
    a = a if a is not None else np.full(n, a_point)
    b = b if b is not None else np.full(n, b_point)
    return np.maximum(a, 1e-12), np.maximum(b, 1e-12)


def verdict(low: float | None, high: float | None, words: tuple[str, str] = ("faster", "slower")) -> str:
    """Above 1: the first word; below 1: the second; an interval containing 1 (or none): not distinguishable."""
    if low is not None and low > 1.0:
        return words[0]
    if high is not None and high < 1.0:
        return words[1]
    return UNDISTINGUISHED


def _pair_warnings(f: Target, b: Target) -> list[str]:
    out = []
    for role, t in (("baseline", b), ("FPGA", f)):
        k = len(t.run_ids)
        for prefix, count in sorted(t.noisy.items()):
            out.append(f"{role} {t.label} flagged {prefix.rstrip(':')} ({count} of {k} runs)")
        if t.invalid_runs:
            out.append(f"{role} {t.label} LoadGen INVALID ({t.invalid_runs} of {k} runs)")
        if t.source == "emulated":
            out.append(f"{role} {t.label} is emulated: modelled, not measured")
        if t.interval_from.startswith("latency samples"):
            out.append(f"{role} {t.label}: one run: within-run spread only")
    if f.sweep_id != b.sweep_id:
        out.append(f"different sweeps: {f.sweep_id[:8]} vs {b.sweep_id[:8]}")
    if f.precision != b.precision:
        out.append(f"across precisions: {f.precision} vs {b.precision} (compare their accuracy)")
    return out


def winners(targets: list[Target], *, seed: int = bs.SEED) -> list[dict[str, Any]]:
    """Per WINNER_METRICS: the best target by its median and the catalog's better direction, and whether
    it is distinguishable from the runner-up (the interval of best over runner-up, oriented so above 1 is
    better, excludes 1)."""
    out = []
    for name in WINNER_METRICS:
        lower = metrics.better(name) == "lower"
        have = [t for t in targets if t.value(name) is not None and t.value(name) > 0]
        if not have:
            continue
        ranked = sorted(have, key=lambda t: t.value(name) if lower else -t.value(name))
        best = ranked[0]
        row: dict[str, Any] = {
            "metric": name,
            "label": metrics.label(name),
            "unit": metrics.unit(name),
            "winner": best.label,
            "source": best.source,
            "value": best.value(name),
            "runner_up": None,
            "margin": None,
            "low": None,
            "high": None,
            "verdict": "only target",
        }
        if len(ranked) > 1:
            second = ranked[1]
            a, b = best.value(name), second.value(name)
            margin = b / a if lower else a / b
            low = high = None
            da, db = best.draws.get(name), second.draws.get(name)
            if da is not None or db is not None:
                da, db = _paired(da, a, db, b)
                low, high = bs.interval(db / da if lower else da / db)
            v = verdict(low, high, ("wins", "wins"))
            row |= {"runner_up": second.label, "margin": margin, "low": low, "high": high, "verdict": v}
        out.append(row)
    return out
