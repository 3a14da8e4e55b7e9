"""The decision: every board type's capacity at the SLA, its board count and cost with intervals, ranked,
with the ruled-out ones and why; the cheapest mix; and how the ranking moves with the assumptions.

Sources are never mixed silently: a candidate is measured, emulated or predicted (measured runs win over
emulated ones, which win over a prediction, and the one not used is named in the warnings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from farm import metrics
from farm.procure import uncertainty as unc
from farm.procure.capacity import Bracket, probes_of, queue_capacity, server_capacity
from farm.procure.costs import BoardCost, Costs, Economics, check_economics, from_catalog
from farm.procure.evidence import MAX_RUNS, Series, gather
from farm.procure.predicted import Predicted, Predictor, perfmodel_predictor
from farm.procure.tco import boards_needed, boards_needed_array, crf, spares_for, tco, tco_per_year_array
from farm.procure.workload import ProcureError, Workload

#: Separating the top two: the first must be cheaper in at least this share of the joint draws, and their
#: cost intervals must not overlap; otherwise the verdict says the data cannot separate them.
SEPARATION_P = 0.8
RULES = {
    "usable runs": f"newest {MAX_RUNS} per scenario; not INVALID, not flagged noisy-host:/unstable:, "
    "not confirmation runs; measured before emulated before predicted",
    "server capacity": "highest Server probe with p99 <= bound and offered load < 1, interpolated (in p99) "
    "towards the next probe above it when that one failed on latency; never extrapolated past the probes",
    "server estimate": "no Server run: only if SingleStream p99 <= bound; M/D/1 rule (constant service 1/mu, "
    "waiting tail exp(-theta t)), mu = Offline throughput (else SingleStream's): conservative",
    "single stream": "p99 latency <= bound; one stream per board",
    "offline": "capacity = Offline throughput_ips (no Offline run: SingleStream throughput, a lower bound)",
    "predicted": "calibrated DPU model; latency x (1 + error) <= bound; Server capacity by the M/D/1 rule "
    "on fps_mt; uncertainty exp(N(0, sigma)), sigma = ln(1 + held-out median error) / 0.6745",
    "active power": "costs file active_w, else the runs' median power_w, else catalog TDP (upper bound)",
    "interval": f"{unc.LEVEL:.0%} bootstrap interval ({unc.N_DRAWS} seeded draws), widened to hold the point",
    "verdict": f"the top two are separated when P(first cheaper) >= {SEPARATION_P} and their cost "
    "intervals do not overlap",
}


@dataclass
class _Basis:
    """What re-pricing needs (sensitivity, mixes): not part of the JSON."""

    capacity: float
    draws: np.ndarray
    unit_usd: float
    active_w: float
    idle_w: float
    host_w: float
    pue: float | None
    served_per_demand: float  # inferences/s served per unit of demand


@dataclass
class Candidate:
    board_type: str
    precision: str
    source: str  # measured | emulated | predicted
    capacity_basis: str
    capacity_unit: str
    capacity_qps: float  # in capacity_unit (queries/s, images/s or streams): the JSON name the brief fixed
    capacity_qps_low: float
    capacity_qps_high: float
    boards_needed: int
    boards_needed_low: float
    boards_needed_high: float
    unit_price_usd: float
    capex_usd: float
    capital_usd_per_year: float
    energy_kwh_per_year: float
    energy_usd_per_year: float
    tco_usd_per_year: float
    tco_usd_per_year_low: float
    tco_usd_per_year_high: float
    tco_usd_lifetime: float
    usd_per_million_inferences: float | None
    inferences_per_joule: float | None
    capacity_per_kusd: float  # performance per dollar: capacity per $1,000 of one board (with host share)
    active_w: float
    active_w_source: str
    idle_w: float
    idle_w_source: str
    run_ids: list[int]
    newest_run_at: str | None
    newest_run_age_days: float | None
    prediction_error_pct: float | None
    accuracy: dict[str, Any]
    placeholders_used: list[str]
    warnings: list[str]
    rank: int = 0
    # one query's p99 latency (SingleStream runs' median, else the model's prediction): the Pareto chart's x
    latency_ms_p99: float | None = None
    _basis: _Basis | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        tag = "" if self.source == "measured" else f" ({self.source})"
        return f"{self.board_type} {self.precision}{tag}"

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        out["label"] = self.label
        return {k: _finite(v) for k, v in out.items()}


@dataclass
class RuledOut:
    board_type: str
    precision: str | None
    source: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Verdict:
    status: str  # clear | too close | single | none
    text: str
    cheapest: str | None = None
    runner_up: str | None = None
    p_first_cheaper: float | None = None
    intervals_overlap: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Mix:
    parts: dict[str, int]  # candidate label -> boards
    tco_usd_per_year: float
    capex_usd: float
    saving_usd_per_year: float  # against the cheapest single type

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Decision:
    assumptions: dict[str, Any]
    candidates: list[Candidate]
    ruled_out: list[RuledOut]
    verdict: Verdict
    mix: Mix | None = None
    workload: Workload | None = field(default=None, repr=False)
    economics: Economics | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "assumptions": self.assumptions,
            "candidates": [c.to_json() for c in self.candidates],
            "ruled_out": [r.to_json() for r in self.ruled_out],
            "verdict": self.verdict.to_json(),
        }
        if self.mix is not None:
            out["mix"] = self.mix.to_json()
        return out


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# -- capacity per candidate --------------------------------------------------------------------------------


@dataclass
class _Capacity:
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


def _measured_capacity(series: Series, w: Workload, rng: np.random.Generator, n: int) -> _Capacity | str:
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
                return _Capacity(
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
        return _Capacity(
            point,
            draws,
            f"Server estimate (M/D/1 on {which} throughput; no Server run)",
            [r.run_id for r in ss + src],
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
        return _Capacity(float(np.median(values)), draws, basis, [r.run_id for r in runs], 1.0, notes)
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
    return _Capacity(1.0, np.ones(n), "SingleStream p99", [r.run_id for r in runs], per_stream, notes)


def _predicted_capacity(p: Predicted, w: Workload, rng: np.random.Generator, n: int) -> _Capacity | str:
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
        return _Capacity(point, draws, "predicted (DPU model, M/D/1 Server rule)", [], w.batch_size, [])
    if w.kind == "offline":
        return _Capacity(p.fps_mt, p.fps_mt * factor, "predicted (DPU model fps_mt)", [], 1.0, [])
    return _Capacity(1.0, np.ones(n), "predicted (DPU model latency)", [], p.fps_st, [])


# -- the decision ------------------------------------------------------------------------------------------


def _power(
    cost: BoardCost, series: Series | None, scenario_order: tuple[str, ...], bt: Any
) -> tuple[float, str] | None:
    if cost.active_w is not None:
        return cost.active_w, "costs file active_w"
    if series is not None:
        value, _ = series.any_median("power_w", scenario_order)
        if value is not None:
            return value, f"{series.source} power_w (median of the runs)"
    if bt.tdp_w is not None:
        return bt.tdp_w, "catalog TDP (an upper bound)"
    if bt.power is not None:
        return bt.power.static_w + bt.power.dynamic_w, "catalog power model at full load"
    return None


def _accuracy(series: Series | None, w: Workload) -> tuple[dict[str, Any], str | None, str | None]:
    """(figures, a reason to rule out, a warning)."""
    top1 = series.newest_value("accuracy_top1") if series else None
    agreement = series.newest_value("int8_fp32_top1_agreement") if series else None
    figures = {"accuracy_top1": top1, "int8_fp32_top1_agreement": agreement}
    if w.min_top1 is not None:
        if top1 is None:
            return figures, None, f"accuracy unknown (no accuracy_top1 figure; floor {w.min_top1:g})"
        if top1 < w.min_top1:
            return figures, f"top-1 accuracy {top1:.4f} is below the {w.min_top1:g} floor", None
    if w.min_agreement is not None:
        if series and series.precision == "fp32":
            return figures, None, None  # FP32 is the reference the agreement is measured against
        if agreement is None:
            return (
                figures,
                None,
                f"accuracy unknown (no INT8/FP32 agreement figure; floor {w.min_agreement:g})",
            )
        if agreement < w.min_agreement:
            return (
                figures,
                f"INT8/FP32 top-1 agreement {agreement:.4f} is below the {w.min_agreement:g} floor",
                None,
            )
    return figures, None, None


def decide(
    session: Session,
    workload: Workload,
    costs: Costs | None = None,
    *,
    catalog: dict[str, Any] | None = None,
    predictor: Predictor | None = None,
    now: datetime | None = None,
    draws: int = unc.N_DRAWS,
    seed: int = unc.SEED,
    mix: bool = False,
) -> Decision:
    """Answer one procurement question from the results database. ProcureError (a field named) for a
    question that cannot be asked (an unknown board type, economics out of range); a question no board
    meets returns a Decision with no candidates and verdict "none"."""
    if catalog is None:
        from farm.perfmodel.target import load_catalog

        catalog = load_catalog()
    costs = costs or from_catalog(catalog)
    econ = costs.economics
    check_economics(econ)
    predictor = predictor or perfmodel_predictor
    now = now or datetime.now(timezone.utc)
    w = workload
    scope = list(w.boards) if w.boards else sorted(catalog)
    for name in scope:
        if name not in catalog:
            raise ProcureError(
                f"unknown board type {name!r} (the catalog has: {', '.join(sorted(catalog))})",
                field="--boards",
            )
    evidence = gather(session, w, scope)
    candidates: list[Candidate] = []
    ruled: list[RuledOut] = []
    for bt_name in scope:
        bt = catalog[bt_name]
        cost = costs.boards.get(bt_name) or from_catalog({bt_name: bt}).boards[bt_name]
        precisions = [p for p in w.precisions if p in bt.precisions]
        if not precisions:
            ruled.append(
                RuledOut(
                    bt_name,
                    None,
                    None,
                    f"runs {'/'.join(bt.precisions)} only; asked {'/'.join(w.precisions)}",
                )
            )
            continue
        for precision in precisions:
            measured = evidence.get((bt_name, precision, "measured"))
            emulated = evidence.get((bt_name, precision, "emulated"))
            has = lambda s: s is not None and any(s.runs.values())  # noqa: E731
            series = measured if has(measured) else emulated if has(emulated) else None
            warnings: list[str] = []
            if series is measured and has(emulated):
                warnings.append("emulated runs exist too: not used (measured runs win; never mixed)")
            for s in (measured, emulated):
                if s is not None and s.skipped:
                    skipped = ", ".join(f"{n} {r}" for r, n in sorted(s.skipped.items()))
                    warnings.append(f"{s.source} runs skipped: {skipped}")
            if cost.list_usd is None:
                ruled.append(RuledOut(bt_name, precision, series.source if series else None,
                                      "no price in the catalog or the costs file"))  # fmt: skip
                continue
            rng = unc.generator(seed, bt_name, precision)
            predicted: Predicted | None = None
            if series is not None:
                cap = _measured_capacity(series, w, rng, draws)
                source = series.source
                warnings.extend(series.alerts and [f"used with a warning: {a}" for a in series.alerts] or [])
            else:
                pred = predictor(w.model, bt_name, w.batch_size, bt)
                if isinstance(pred, str):
                    ruled.append(RuledOut(bt_name, precision, None, pred))
                    continue
                predicted, source = pred, "predicted"
                cap = _predicted_capacity(pred, w, rng, draws)
                warnings.extend(pred.warnings)
            if isinstance(cap, str):
                ruled.append(RuledOut(bt_name, precision, source, cap))
                continue
            figures, reason, acc_warning = _accuracy(series, w)
            if reason:
                ruled.append(RuledOut(bt_name, precision, source, reason))
                continue
            if acc_warning:
                warnings.append(acc_warning)
            order = {
                "server": ("Server", "Offline", "SingleStream"),
                "offline": ("Offline", "Server", "SingleStream"),
            }
            power = _power(cost, series, order.get(w.kind, ("SingleStream", "Server", "Offline")), bt)
            if power is None:
                ruled.append(
                    RuledOut(bt_name, precision, source, "no power figure (runs, TDP or power model)")
                )
                continue
            active_w, active_src = power
            if cost.idle_w is not None:
                idle_w, idle_src = cost.idle_w, cost.idle_source
            else:
                idle_w, idle_src = active_w, "no idle figure: active power used"
            if active_src.startswith("catalog"):
                warnings.append(f"active power from the {active_src}, not a run")
            warnings.extend(cap.notes)
            pue = cost.pue
            basis = _Basis(cap.point, cap.draws, cost.unit_usd, active_w, idle_w, cost.host_share_w, pue,
                           cap.served_per_demand)  # fmt: skip
            newest = series.newest() if series else None
            cand = _priced(
                w, econ, basis,
                board_type=bt_name, precision=precision, source=source, capacity_basis=cap.basis,
                active_w_source=active_src, idle_w_source=idle_src, run_ids=sorted(cap.run_ids),
                newest=newest, now=now, predicted=predicted, accuracy=figures,
                placeholders=cost.placeholders(), warnings=warnings,
            )  # fmt: skip
            cand.latency_ms_p99 = _single_p99(series, predicted)
            candidates.append(cand)
    candidates.sort(key=lambda c: (c.tco_usd_per_year, c.board_type, c.precision))
    verdict = _verdict(candidates)
    placeholders = sorted({p for c in candidates for p in c.placeholders_used})
    assumptions = {
        "workload": w.to_json(),
        "economics": econ.to_json(),
        "capital_recovery_factor": crf(econ.discount_rate, econ.lifetime_years),
        "costs_file": None if costs.source == "catalog" else costs.source,
        "prices": {
            c.board_type: {
                "list_usd": costs.boards[c.board_type].list_usd,
                "source": costs.boards[c.board_type].source,
                "date": costs.boards[c.board_type].date,
                "placeholder": costs.boards[c.board_type].placeholder,
                "host_share_usd": costs.boards[c.board_type].host_share_usd,
                "host_share_w": costs.boards[c.board_type].host_share_w,
            }
            for c in candidates
        },
        "placeholders_used": placeholders,
        "prediction_error": "per board: the larger of the model's held-out median |error| of fps_st and fps_mt "
        "(leave-one-board-out on the Vitis AI zoo table; farm.perfmodel.params.held_out_error, docs/dpu-model.md); "
        "boards the table lacks: the overall held-out (new architecture) error",
        "bootstrap": {"draws": draws, "seed": seed, "level": unc.LEVEL},
        "rules": RULES,
        "computed_at": now.isoformat(timespec="seconds"),
    }
    decision = Decision(assumptions, candidates, ruled, verdict, workload=w, economics=econ)
    if mix:
        decision.mix = cheapest_mix(decision)
    return decision


def _single_p99(series: Any, predicted: Predicted | None) -> float | None:
    """One query's p99: the SingleStream runs' median, else the model's latency (its error added)."""
    values = [r.metrics["latency_ms_p99"] for r in (series.runs.get("SingleStream", []) if series else [])
              if "latency_ms_p99" in r.metrics]  # fmt: skip
    if values:
        return float(np.median(values))
    return predicted.latency_ms * (1 + predicted.error_pct / 100) if predicted else None


def _priced(w: Workload, econ: Economics, basis: _Basis, *, board_type: str, precision: str, source: str,
            capacity_basis: str, active_w_source: str, idle_w_source: str, run_ids: list[int],
            newest: datetime | None, now: datetime, predicted: Predicted | None, accuracy: dict[str, Any],
            placeholders: list[str], warnings: list[str]) -> Candidate:  # fmt: skip
    demand = w.demand
    n = boards_needed(demand, basis.capacity, econ)
    figures = tco(
        n, unit_usd=basis.unit_usd, active_w=basis.active_w, idle_w=basis.idle_w, host_w=basis.host_w,
        served_ips=demand * basis.served_per_demand, econ=econ, pue=basis.pue,
    )  # fmt: skip
    n_draws = boards_needed_array(demand, basis.draws, econ)
    tco_draws = tco_per_year_array(
        n_draws, unit_usd=basis.unit_usd, active_w=basis.active_w, idle_w=basis.idle_w, host_w=basis.host_w,
        econ=econ, pue=basis.pue,
    )  # fmt: skip
    cap_lo, cap_hi = unc.interval(basis.draws)
    n_lo, n_hi = unc.interval(n_draws)
    t_lo, t_hi = unc.interval(tco_draws)
    cand = Candidate(
        board_type=board_type,
        precision=precision,
        source=source,
        capacity_basis=capacity_basis,
        capacity_unit=w.capacity_unit,
        capacity_qps=basis.capacity,
        capacity_qps_low=min(cap_lo, basis.capacity),
        capacity_qps_high=max(cap_hi, basis.capacity),
        boards_needed=n,
        boards_needed_low=min(n_lo, n),
        boards_needed_high=max(n_hi, n),
        unit_price_usd=basis.unit_usd,
        capex_usd=figures.capex_usd,
        capital_usd_per_year=figures.capital_usd_per_year,
        energy_kwh_per_year=figures.energy_kwh_per_year,
        energy_usd_per_year=figures.energy_usd_per_year,
        tco_usd_per_year=figures.tco_usd_per_year,
        tco_usd_per_year_low=min(t_lo, figures.tco_usd_per_year),
        tco_usd_per_year_high=max(t_hi, figures.tco_usd_per_year),
        tco_usd_lifetime=figures.tco_usd_per_year * econ.lifetime_years,
        usd_per_million_inferences=figures.usd_per_million_inferences,
        inferences_per_joule=figures.inferences_per_joule,
        capacity_per_kusd=basis.capacity / basis.unit_usd * 1000.0 if basis.unit_usd else math.inf,
        active_w=basis.active_w,
        active_w_source=active_w_source,
        idle_w=basis.idle_w,
        idle_w_source=idle_w_source,
        run_ids=run_ids,
        newest_run_at=newest.isoformat(timespec="seconds") if newest else None,
        newest_run_age_days=round((now - newest).total_seconds() / 86400.0, 2) if newest else None,
        prediction_error_pct=predicted.error_pct if predicted else None,
        accuracy=accuracy,
        placeholders_used=placeholders,
        warnings=list(dict.fromkeys(warnings)),
    )
    cand._basis = replace(basis)
    cand._tco_draws = tco_draws  # type: ignore[attr-defined]
    return cand


def _verdict(cands: list[Candidate]) -> Verdict:
    if not cands:
        return Verdict("none", "no board type meets the workload: see the ruled-out list")
    first = cands[0]
    first.rank = 1
    if len(cands) == 1:
        return Verdict("single", f"only {first.label} meets the workload", cheapest=first.label)
    second = cands[1]
    p = unc.p_less(first._tco_draws, second._tco_draws)  # type: ignore[attr-defined]
    overlap = first.tco_usd_per_year_high >= second.tco_usd_per_year_low
    for i, c in enumerate(cands[1:], start=2):
        c.rank = i
    if p >= SEPARATION_P and not overlap:
        text = (
            f"{first.label} is cheapest: {first.boards_needed} board(s), ${first.tco_usd_per_year:,.0f}/year; "
            f"cheaper than {second.label} in {p:.0%} of the draws"
        )
        return Verdict("clear", text, first.label, second.label, p, overlap)
    second.rank = 1
    why = f"P(first cheaper) = {p:.0%}" + (", and their cost intervals overlap" if overlap else "")
    text = (
        f"the data cannot separate {first.label} (${first.tco_usd_per_year:,.0f}/year) and {second.label} "
        f"(${second.tco_usd_per_year:,.0f}/year): {why}; more runs, or a quote, would decide"
    )
    return Verdict("too close", text, first.label, second.label, p, overlap)


# -- mixes and sensitivity ---------------------------------------------------------------------------------


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
