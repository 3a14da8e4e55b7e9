"""The decision: every board type's capacity at the SLA, its board count and cost with intervals, ranked,
with the ruled-out ones and why; the cheapest mix; and how the ranking moves with the assumptions.

Sources are never mixed silently: a candidate is measured, emulated or predicted (measured runs win over
emulated ones, which win over a prediction, and the one not used is named in the warnings).

The types a decision holds are in farm.procure.decision, one candidate's capacity in
farm.procure.board_capacity, the what-ifs (mix, sensitivity) in farm.procure.reprice; this module reaches the
decision and re-exports those names.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from farm.procure import uncertainty as unc
from farm.procure.board_capacity import measured_capacity, predicted_capacity
from farm.procure.costs import BoardCost, Costs, Economics, check_economics, from_catalog
from farm.procure.decision import Basis, Candidate, Decision, Mix, RuledOut, Verdict
from farm.procure.evidence import MAX_RUNS, Series, gather
from farm.procure.predicted import Predicted, Predictor, perfmodel_predictor
from farm.procure.reprice import VARY, Sensitivity, cheapest_mix, default_values, sensitivity
from farm.procure.tco import boards_needed, boards_needed_array, crf, tco, tco_per_year_array
from farm.procure.workload import ProcureError, Workload

__all__ = [
    "RULES",
    "SEPARATION_P",
    "VARY",
    "Candidate",
    "Decision",
    "Mix",
    "RuledOut",
    "Sensitivity",
    "Verdict",
    "cheapest_mix",
    "decide",
    "default_values",
    "sensitivity",
]

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
                cap = measured_capacity(series, w, rng, draws)
                source = series.source
                warnings.extend(series.alerts and [f"used with a warning: {a}" for a in series.alerts] or [])
            else:
                pred = predictor(w.model, bt_name, w.batch_size, bt)
                if isinstance(pred, str):
                    ruled.append(RuledOut(bt_name, precision, None, pred))
                    continue
                predicted, source = pred, "predicted"
                cap = predicted_capacity(pred, w, rng, draws)
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
            basis = Basis(cap.point, cap.draws, cost.unit_usd, active_w, idle_w, cost.host_share_w, pue,
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


def _priced(w: Workload, econ: Economics, basis: Basis, *, board_type: str, precision: str, source: str,
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
