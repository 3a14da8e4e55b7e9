"""Read side for the dashboard's operations pages: Overview, Sweep detail and Fleet (no raw SQL in pages).

Aggregates are done in the database (GROUP BY over indexed columns), never by loading every job.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.db.models import BoardEventRow, BoardRow, JobRow, RunRow, SweepRow
from farm.fleet.states import STATES
from farm.queries import iso

FINISHED = ("done", "cached", "failed")
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
                "jobs": total,
                "finished": finished,
                "progress": finished / total if total else 0.0,
                **{state: c.get(state, 0) for state in JOB_STATES},
            }
        )
    return out


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


def fleet_counts(s: Session) -> dict[str, int]:
    counts = dict(s.execute(select(BoardRow.state, func.count()).group_by(BoardRow.state)).all())
    return {state: counts.get(state, 0) for state in STATES}


def fleet_boards(s: Session) -> list[dict[str, Any]]:
    """Every board with its state, why, its current job and its last health check."""
    query = (
        select(BoardRow, JobRow.key, JobRow.sweep_id)
        .outerjoin(JobRow, JobRow.id == BoardRow.current_job_id)
        .order_by(BoardRow.board_type, BoardRow.name)
    )
    out = []
    for b, job_key, job_sweep in s.execute(query):
        out.append(
            {
                "board": b.name,
                "type": b.board_type,
                "family": b.family,
                "state": b.state,
                "reason": b.state_reason,
                "since": iso(b.state_changed_at),
                "current_job": job_key,
                "current_sweep": job_sweep,
                "worker": b.worker,
                "last_health_at": iso(b.last_health_at),
                "last_health_ok": b.last_health_ok,
            }
        )
    return out


def health_summary(s: Session, days: float = 7.0, now: datetime | None = None) -> list[dict[str, Any]]:
    """Health checks per board over the last `days`: passed and failed counts."""
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    query = (
        select(BoardEventRow.board_name, BoardEventRow.ok, func.count())
        .where(BoardEventRow.kind == "health", BoardEventRow.at >= since)
        .group_by(BoardEventRow.board_name, BoardEventRow.ok)
    )
    per: dict[str, dict[str, int]] = {}
    for board, ok, n in s.execute(query):
        per.setdefault(board, {"passed": 0, "failed": 0})["passed" if ok else "failed"] += n
    return [{"board": b, **c} for b, c in sorted(per.items())]


def board_events(s: Session, board: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """State changes and health checks, newest first; of one board, or of the whole fleet."""
    query = select(BoardEventRow).order_by(BoardEventRow.at.desc()).limit(limit)
    if board:
        query = query.where(BoardEventRow.board_name == board)
    return [
        {
            "at": iso(e.at),
            "board": e.board_name,
            "kind": e.kind,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "ok": e.ok,
            "reason": e.reason,
        }
        for e in s.scalars(query)
    ]
