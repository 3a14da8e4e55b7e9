"""Read side: sweeps and their jobs (the CLI's submit/status, the dashboard's Overview and Sweep detail).

Aggregates are done in the database (GROUP BY over indexed columns), never by loading every job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.db.models import (
    BoardRow,
    JobRow,
    RunRow,
    SweepRow,
)
from farm.queries.common import iso
from farm.services.stability import summary as stability_summary
from farm.sweep.labels import as_csv_cell


def latest_sweep_id(s: Session) -> str | None:
    return s.scalar(select(SweepRow.id).order_by(SweepRow.created_at.desc()).limit(1))


def sweep_summary(s: Session, sweep_id: str) -> dict[str, Any] | None:
    sweep = s.get(SweepRow, sweep_id)
    if sweep is None:
        return None
    jobs = list(s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id).order_by(JobRow.id)))
    counts: dict[str, int] = {}
    for j in jobs:
        counts[f"{j.kind}:{j.state}"] = counts.get(f"{j.kind}:{j.state}", 0) + 1
    return {
        "id": sweep.id,
        "name": sweep.name,
        "state": sweep.state,
        "created_at": iso(sweep.created_at),
        "finished_at": iso(sweep.finished_at),
        "labels": dict(sweep.labels or {}),
        "schedule": sweep.schedule_name,
        "schedule_slot": iso(sweep.schedule_slot),
        "jobs_total": len(jobs),
        "jobs_finished": sum(j.state in FINISHED for j in jobs),
        "compile_executed": sum(j.kind == "compile" and j.state == "done" for j in jobs),
        "compile_cached": sum(j.kind == "compile" and j.state == "cached" for j in jobs),
        "runs_stored": sum(j.kind in ("run", "soak") and j.state == "done" for j in jobs),
        "failed": [{"job": j.key, "error": j.error} for j in jobs if j.state == "failed"],
        "cancelled": sum(j.state == "cancelled" for j in jobs),
        "waiting_for": board_waits(s, sweep_id, jobs),
        "counts": counts,
        "flags": [
            {"run_id": run_id, "job": key, "flag": flag}
            for run_id, key, flags in s.execute(
                select(RunRow.id, JobRow.key, RunRow.flags)
                .join(JobRow, JobRow.id == RunRow.job_id)
                .where(RunRow.sweep_id == sweep_id)
                .order_by(RunRow.id)
            )
            for flag in flags or []
        ],
        "stability": stability_summary(s, sweep_id),
    }


def sweeps(s: Session, limit: int = 20) -> list[dict[str, Any]]:
    ids = s.scalars(select(SweepRow.id).order_by(SweepRow.created_at.desc()).limit(limit))
    return [summary for i in list(ids) if (summary := sweep_summary(s, i))]


FINISHED = ("done", "cached", "failed", "cancelled")


JOB_STATES = ("pending", "queued", "running", "done", "cached", "failed")


def recent_sweeps(s: Session, limit: int = 20) -> list[dict[str, Any]]:
    """The newest sweeps with their jobs counted per state (one grouped query for all of them)."""
    sweeps = list(s.execute(select(SweepRow).order_by(SweepRow.created_at.desc()).limit(limit)).scalars())
    if not sweeps:
        return []
    ids = [w.id for w in sweeps]
    counts: dict[str, dict[str, int]] = {i: {} for i in ids}
    grouped = (
        select(JobRow.sweep_id, JobRow.state, func.count())
        .where(JobRow.sweep_id.in_(ids))
        .group_by(JobRow.sweep_id, JobRow.state)
    )
    for sweep_id, state, n in s.execute(grouped):
        counts[sweep_id][state] = n
    out = []
    for w in sweeps:
        c = counts[w.id]
        total = sum(c.values())
        finished = sum(c.get(k, 0) for k in FINISHED)
        out.append(
            {
                "sweep_id": w.id,
                "name": w.name,
                "state": w.state,
                "created_at": iso(w.created_at),
                "finished_at": iso(w.finished_at),
                "labels": as_csv_cell(w.labels),  # k=v;k=v: a table cell (the Overview's)
                "jobs": total,
                "finished": finished,
                "progress": finished / total if total else 0.0,
                **{state: c.get(state, 0) for state in JOB_STATES},
            }
        )
    return out


def latest_comparable(s: Session, limit: int = 50) -> dict[str, Any] | None:
    """The newest of the ``limit`` latest sweeps that ran one model, scenario and batch size on an FPGA and
    on a CPU or GPU baseline: what the Overview compares (farm.queries.compare.compare_targets pinned to
    it). Of several such selections in that sweep: SingleStream first, then batch 1, then the one with the
    most targets, then the model's name. None when no recent sweep has both."""
    from farm.alerts.series import CONFIRMATION
    from farm.queries.compare import SCENARIO_ORDER
    from farm.queries.runs import family_of, target_families

    recent = list(
        s.execute(
            select(SweepRow.id, SweepRow.name, SweepRow.created_at)
            .where(SweepRow.purpose != CONFIRMATION)
            .order_by(SweepRow.created_at.desc())
            .limit(limit)
        )
    )
    if not recent:
        return None
    targets: dict[tuple[str, str, str, int], set[str]] = {}
    query = (
        select(RunRow.sweep_id, RunRow.model, RunRow.scenario, RunRow.batch_size, RunRow.target)
        .where(RunRow.sweep_id.in_([r.id for r in recent]))
        .distinct()
    )
    for sweep_id, model, scenario, batch, target in s.execute(query):
        targets.setdefault((sweep_id, model, scenario, batch), set()).add(target)
    families = target_families(s)

    def order(key: tuple[str, str, str, int]) -> tuple:
        _sweep, model, scenario, batch = key
        rank = SCENARIO_ORDER.index(scenario) if scenario in SCENARIO_ORDER else len(SCENARIO_ORDER)
        return rank, batch != 1, batch, -len(targets[key]), model

    for sweep_id, name, created in recent:
        both = [
            key
            for key, ts in targets.items()
            if key[0] == sweep_id
            and "fpga" in (fams := {family_of(t, families) for t in ts})
            and fams & {"cpu", "gpu"}
        ]
        if both:
            _sweep, model, scenario, batch = min(both, key=order)
            return {
                "sweep_id": sweep_id,
                "name": name,
                "created_at": iso(created),
                "model": model,
                "scenario": scenario,
                "batch_size": batch,
                "targets": sorted(targets[(sweep_id, model, scenario, batch)]),
                "models": sorted({k[1] for k in both}),
            }
    return None


def flagged_runs(s: Session, fingerprint: str) -> dict[int, list[str]]:
    """Run id -> its flags, for the runs of one fingerprint that carry any (Trends marks them)."""
    query = select(RunRow.id, RunRow.flags).where(
        RunRow.fingerprint == fingerprint, RunRow.flags.is_not(None)
    )
    return {run_id: [str(f) for f in flags] for run_id, flags in s.execute(query) if flags}


def recent_failures(s: Session, sweep_ids: list[str], limit: int = 50) -> list[dict[str, Any]]:
    """Failed jobs of the given sweeps, newest first, with the reason."""
    if not sweep_ids:
        return []
    query = (
        select(JobRow.sweep_id, JobRow.key, JobRow.board_name, JobRow.error, JobRow.finished_at)
        .where(JobRow.sweep_id.in_(sweep_ids), JobRow.state == "failed")
        .order_by(JobRow.id.desc())
        .limit(limit)
    )
    keys = ("sweep_id", "job", "board", "error", "finished_at")
    rows = [dict(zip(keys, r, strict=True)) for r in s.execute(query)]
    for r in rows:
        r["finished_at"] = iso(r["finished_at"])
    return rows


def sweep_choices(s: Session, limit: int = 500) -> list[dict[str, Any]]:
    query = select(SweepRow.id, SweepRow.name, SweepRow.created_at).order_by(SweepRow.created_at.desc())
    return [{"sweep_id": i, "name": n, "created_at": iso(c)} for i, n, c in s.execute(query.limit(limit))]


def sweep_header(s: Session, sweep_id: str) -> dict[str, Any] | None:
    w = s.get(SweepRow, sweep_id)
    if w is None:
        return None
    return {
        "sweep_id": w.id,
        "name": w.name,
        "state": w.state,
        "source": w.source,
        "created_at": iso(w.created_at),
        "finished_at": iso(w.finished_at),
        "spec_yaml": w.spec_yaml,
        "labels": dict(w.labels or {}),
        "schedule": w.schedule_name,
        "schedule_slot": iso(w.schedule_slot),
    }


def sweep_jobs(s: Session, sweep_id: str) -> list[dict[str, Any]]:
    """Every job of a sweep: state, board, duration, failure reason, and the run it stored."""
    query = (
        select(JobRow, RunRow.id)
        .outerjoin(RunRow, RunRow.job_id == JobRow.id)
        .where(JobRow.sweep_id == sweep_id)
        .order_by(JobRow.id)
    )
    out = []
    for job, run_id in s.execute(query):
        duration = None
        if job.started_at and job.finished_at:
            duration = (job.finished_at - job.started_at).total_seconds()
        out.append(
            {
                "job_id": job.id,
                "kind": job.kind,
                "key": job.key,
                "state": job.state,
                "model": job.model,
                "precision": job.precision,
                "target": job.target,
                "batch_size": job.batch_size,
                "scenario": job.scenario,
                "repeat": job.repeat,
                "board": job.board_name,
                "attempts": job.attempts,
                "duration_s": duration,
                "started_at": iso(job.started_at),
                "finished_at": iso(job.finished_at),
                "error": job.error,
                "run_id": run_id,
            }
        )
    return out


def board_waits(s: Session, sweep_id: str, jobs: list[JobRow]) -> list[str]:
    """Board types this sweep's queued run jobs wait for because every board of the type is running
    another sweep's job (what an embedded submit's progress line says while it waits its turn)."""
    out = []
    for target in sorted({j.target for j in jobs if j.kind != "compile" and j.state == "queued"}):
        boards = list(
            s.execute(select(BoardRow.state, BoardRow.current_job_id).where(BoardRow.board_type == target))
        )
        if not boards or any(state == "idle" for state, _ in boards):
            continue
        busy = [job_id for state, job_id in boards if state == "running" and job_id is not None]
        others = set(
            s.scalars(select(JobRow.sweep_id).where(JobRow.id.in_(busy), JobRow.sweep_id != sweep_id))
        )
        if others:
            out.append(f"a {target} board, busy with sweep {', '.join(sorted(o[:8] for o in others))}")
    return out
