"""Read side of `farm compare` and the dashboard's Compare page: comparisons people can trust (docs/compare.md).

One consistent selection (one model, scenario and batch size; one sweep unless it must mix, and then it
says so), each target at one precision with its accuracy beside its speed, every headline metric as a
median with a bootstrap interval, and each FPGA's ratios over each CPU and GPU baseline with an interval
and a verdict. Flags, LoadGen validity and the source (measured / emulated) travel with every row, and a
ratio over a flagged or INVALID side carries a warning. Pure functions over a Session; nothing is written.

This module makes the selection and answers the entry points; one target's figures are in
farm.queries.compare_figures, the result types and the verdicts (ratios, winners) in
farm.queries.compare_ratios. Every public name of those is importable from here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from farm.alerts.series import CONFIRMATION, TIME_SCALED
from farm.db.models import ArtifactRow, RunRow, SweepRow
from farm.errors import FarmError
from farm.queries.common import iso
from farm.queries.compare_figures import summarise
from farm.queries.compare_ratios import (
    ACCURACY,
    HEADLINE,
    PRECISION_ORDER,
    RATIOS,
    SCENARIO_ORDER,
    UNDISTINGUISHED,
    WINNER_METRICS,
    CompareError,
    Comparison,
    Interval,
    Ratio,
    RatioSpec,
    SelectedRun,
    Target,
    ratios,
    verdict,
    winners,
)
from farm.queries.runs import family_of, target_families
from farm.regressions import bootstrap as bs

__all__ = [
    "ACCURACY",
    "HEADLINE",
    "PRECISION_ORDER",
    "RATIOS",
    "SCENARIO_ORDER",
    "UNDISTINGUISHED",
    "WINNER_METRICS",
    "CompareError",
    "Comparison",
    "Interval",
    "Ratio",
    "RatioSpec",
    "Target",
    "compare_targets",
    "ratios",
    "resolve_sweep",
    "sweeps_for_model",
    "verdict",
    "winners",
]


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
        SelectedRun(
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

    units: dict[tuple[str, str, str], list[SelectedRun]] = {}
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
        targets.append(summarise(s, key, family_of(key[0], fams), chosen[key], mine, seed, n_draws))
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
    units: dict[tuple[str, str, str], list[SelectedRun]], sweeps: dict[str, SweepRow]
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
