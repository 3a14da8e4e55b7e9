"""Read side of `farm compare` and the dashboard's Compare page: comparisons people can trust (docs/compare.md).

One consistent selection (one model, scenario and batch size; one sweep unless it must mix, and then it
says so), each target at one precision with its accuracy beside its speed, every headline metric as a
median with a bootstrap interval, and each FPGA's ratios over each CPU and GPU baseline with an interval
and a verdict. Flags, LoadGen validity and the source (measured / emulated) travel with every row, and a
ratio over a flagged or INVALID side carries a warning. Pure functions over a Session; nothing is written.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from farm import metrics
from farm.alerts.series import CONFIRMATION, TIME_SCALED, UNUSABLE_FLAGS
from farm.db.models import ArtifactRow, MetricRow, RunRow, SweepRow
from farm.errors import FarmError
from farm.queries.common import iso
from farm.queries.runs import family_of, target_families
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


# --- the selection --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    id: int
    target: str
    precision: str
    source: str
    sweep_id: str
    created_at: datetime
    result_valid: bool | None
    flags: tuple[str, ...]
    agreement: float | None


def _choose(label: str, given: Any, available: list[Any], default: Any) -> Any:
    if given is None:
        return default
    if given not in available:
        known = ", ".join(map(str, available)) or "none"
        raise CompareError(f"no runs with {label} {given!r} for this selection (with runs: {known})")
    return given


def resolve_sweep(s: Session, ref: str) -> SweepRow:
    """A sweep id or a unique prefix of one (the dashboard shows 8 characters)."""
    found = s.get(SweepRow, ref)
    if found is not None:
        return found
    matches = list(s.scalars(select(SweepRow).where(SweepRow.id.startswith(ref)).limit(3))) if ref else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CompareError(f"unknown sweep {ref!r}")
    raise CompareError(f"sweep {ref!r} is ambiguous: give more of its id")


def compare_targets(
    s: Session,
    model: str,
    *,
    precisions: tuple[str, ...] = (),
    scenario: str | None = None,
    batch_size: int | None = None,
    sweep_id: str | None = None,
    include_emulated: bool = True,
    include_time_scaled: bool = False,
    families: dict[str, str] | None = None,
    seed: int = bs.SEED,
    n_draws: int = bs.N_DRAWS,
) -> Comparison:
    """The whole comparison of one selection. ``precisions`` empty: each target at its best available
    precision (PRECISION_ORDER); ``scenario``/``batch_size`` None: SingleStream (else the first scenario
    with runs) and batch 1 (else the smallest). CompareError for what the database cannot answer."""
    models = set(s.scalars(select(RunRow.model).distinct()))
    if model not in models:
        raise CompareError(
            f"no runs of model {model!r} (models with runs: {', '.join(sorted(models)) or 'none'})"
        )
    pinned = resolve_sweep(s, sweep_id) if sweep_id else None
    base = select(RunRow.scenario, RunRow.batch_size).where(RunRow.model == model).distinct()
    if pinned is not None:
        base = base.where(RunRow.sweep_id == pinned.id)
    combos = s.execute(base).all()
    if not combos:
        raise CompareError(f"sweep {pinned.id if pinned else ''} has no runs of model {model!r}")
    scenarios = sorted({c[0] for c in combos}, key=lambda x: (SCENARIO_ORDER + (x,)).index(x))
    scenario = _choose("scenario", scenario, scenarios, scenarios[0])
    batches = sorted({c[1] for c in combos if c[0] == scenario})
    batch_size = _choose("batch size", batch_size, batches, 1 if 1 in batches else batches[0])

    query = (
        select(RunRow, ArtifactRow.top1_agreement, SweepRow.purpose)
        .join(ArtifactRow, ArtifactRow.key == RunRow.artifact_key)
        .join(SweepRow, SweepRow.id == RunRow.sweep_id)
        .where(RunRow.model == model, RunRow.scenario == scenario, RunRow.batch_size == batch_size)
    )
    if pinned is not None:
        query = query.where(RunRow.sweep_id == pinned.id)
    if not include_emulated:
        query = query.where(RunRow.source != "emulated")
    runs = [
        _Run(
            r.id,
            r.target,
            r.precision,
            r.source,
            r.sweep_id,
            r.created_at,
            r.result_valid,
            tuple(map(str, r.flags or ())),
            agreement,
        )  # fmt: skip
        for r, agreement, purpose in s.execute(query)
        if pinned is not None or purpose != CONFIRMATION  # a confirmation re-run is no selection's sweep
    ]
    scaled = [r for r in runs if any(f.startswith(TIME_SCALED) for f in r.flags)]
    if scaled and not include_time_scaled:  # their figures carry the host's overhead x 1/scale
        runs = [r for r in runs if r not in scaled]
        if not runs:
            raise CompareError(
                f"every run of {model} {scenario} batch {batch_size} is from a time-scaled lab "
                f"({len(scaled)} runs flagged time-scaled): their figures multiply the host's overhead by "
                "1/scale and are not compared; run the sweep on `farm lab up --time-scale 1`, or pass "
                "--include-time-scaled to see them (labelled)"
            )
    ran = sorted({r.precision for r in runs})
    for p in precisions:
        _choose("precision", p, ran, None)
    if precisions:
        runs = [r for r in runs if r.precision in precisions]
    if not runs:
        raise CompareError(
            f"no {'measured ' if not include_emulated else ''}runs of {model} {scenario} batch {batch_size}"
            + (f" in sweep {pinned.id}" if pinned else "")
        )
    if not precisions:  # best available precision per (target, source)
        best: dict[tuple[str, str], str] = {}
        for r in runs:
            key = (r.target, r.source)
            if key not in best or _prec_rank(r.precision) < _prec_rank(best[key]):
                best[key] = r.precision
        runs = [r for r in runs if best[(r.target, r.source)] == r.precision]

    units: dict[tuple[str, str, str], list[_Run]] = {}
    for r in runs:
        units.setdefault((r.target, r.precision, r.source), []).append(r)
    sweep_rows = {
        row.id: row for row in s.scalars(select(SweepRow).where(SweepRow.id.in_({r.sweep_id for r in runs})))
    }
    chosen, mixed = _pick_sweeps(units, sweep_rows)
    fams = families if families is not None else _families(s)
    targets = []
    for key in sorted(units, key=lambda k: (_family_rank(family_of(k[0], fams)), k)):
        mine = [r for r in units[key] if r.sweep_id == chosen[key]]
        targets.append(_summarise(s, key, family_of(key[0], fams), chosen[key], mine, seed, n_draws))
    used = sorted(set(chosen.values()), key=lambda i: (sweep_rows[i].created_at, i), reverse=True)
    selection = {
        "model": model,
        "scenario": scenario,
        "batch_size": batch_size,
        "precisions": sorted({t.precision for t in targets}, key=_prec_rank),
        "precision_rule": "as given" if precisions else "best available per target (fp32 > fp16 > int8)",
        "sweep_rule": "pinned"
        if pinned
        else ("mixed selection" if mixed else "newest sweep with every target"),
        "sweeps": [
            {"sweep_id": i, "name": sweep_rows[i].name, "created_at": iso(sweep_rows[i].created_at)}
            for i in used
        ],
        "mixed": mixed,
        "include_emulated": include_emulated,
        "include_time_scaled": include_time_scaled,
        "excluded_time_scaled_runs": 0 if include_time_scaled else len(scaled),
        "interval": {"level": bs.LEVEL, "draws": n_draws, "seed": seed},
    }
    return Comparison(selection, targets, ratios(targets, seed=seed), winners(targets, seed=seed))


def _prec_rank(p: str) -> int:
    return PRECISION_ORDER.index(p) if p in PRECISION_ORDER else len(PRECISION_ORDER)


def _family_rank(f: str) -> int:
    return ("fpga", "gpu", "cpu").index(f) if f in ("fpga", "gpu", "cpu") else 3


def _families(s: Session) -> dict[str, str]:
    """board type -> family: the catalog's (the truth), over the boards table's, over names."""
    out = target_families(s)
    try:
        from farm.perfmodel.target import load_catalog

        out |= {name: bt.family for name, bt in load_catalog().items()}
    except FarmError:
        pass  # no catalog readable here: the boards the farm knows still say it
    return out


def _pick_sweeps(
    units: dict[tuple[str, str, str], list[_Run]], sweeps: dict[str, SweepRow]
) -> tuple[dict[tuple[str, str, str], str], bool]:
    """unit -> its sweep. The newest sweep that ran every unit; failing that (mixed), the sweep that ran
    the most units (newest first) for those, then the next, so as few sweeps as possible are mixed."""
    ran = {key: {r.sweep_id for r in rs} for key, rs in units.items()}

    def newest(ids: set[str]) -> list[str]:
        return sorted(ids, key=lambda i: (sweeps[i].created_at, i), reverse=True)

    whole = set.intersection(*ran.values())
    if whole:
        top = newest(whole)[0]
        return dict.fromkeys(units, top), False
    chosen: dict[tuple[str, str, str], str] = {}
    while len(chosen) < len(units):
        left = [k for k in units if k not in chosen]
        counts = {i: sum(i in ran[k] for k in left) for i in set().union(*(ran[k] for k in left))}
        top = max(newest(set(counts)), key=lambda i: counts[i])  # max keeps the first (newest) of a tie
        chosen |= {k: top for k in left if top in ran[k]}
    return chosen, len(set(chosen.values())) > 1


# --- one target's figures -------------------------------------------------------------------------


def _summarise(
    s: Session, key: tuple[str, str, str], family: str, sweep_id: str, runs: list[_Run], seed: int, n: int
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


# --- ratios and winners ---------------------------------------------------------------------------


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


def sweeps_for_model(
    s: Session, model: str, scenario: str, batch_size: int, limit: int = 200
) -> list[dict[str, Any]]:
    """The sweeps that ran a model's scenario and batch (any precision), newest first, with how many
    board types each ran: for a sweep picker."""
    query = (
        select(RunRow.sweep_id, SweepRow.name, SweepRow.created_at, func.count(distinct(RunRow.target)))
        .join(SweepRow, SweepRow.id == RunRow.sweep_id)
        .where(RunRow.model == model, RunRow.scenario == scenario, RunRow.batch_size == batch_size)
        .group_by(RunRow.sweep_id, SweepRow.name, SweepRow.created_at)
        .order_by(SweepRow.created_at.desc(), RunRow.sweep_id)
        .limit(limit)
    )
    return [
        {"sweep_id": i, "name": name, "created_at": iso(at), "targets": n}
        for i, name, at, n in s.execute(query)
    ]
