"""Sweep bookkeeping: creating a sweep with its jobs, and rolling job states up into the sweep's."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.db.models import JobRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.fleet.states import sync_boards
from farm.inventory import Inventory
from farm.sweep.expand import expand
from farm.sweep.load import LoadedSweep

TERMINAL = ("done", "cached", "failed")


def resolved_spec(loaded: LoadedSweep) -> dict:
    """The spec as JSON, with model file paths made absolute so a worker elsewhere gets the same thing."""
    spec = loaded.spec.model_dump(mode="json")
    for ref, raw in zip(loaded.spec.models, spec["models"], strict=True):
        for field in ("onnx", "checkpoint"):
            if raw.get(field):
                raw[field] = str(loaded.model_path(ref))
        if ref.torch:
            raw["python_path"] = str((loaded.base_dir / (ref.python_path or ".")).resolve())
    return spec


def create_sweep(db_url: str, loaded: LoadedSweep, inventory: Inventory) -> tuple[str, list[int]]:
    """Write the sweep and all its jobs in one transaction; return the id and the compile job ids."""
    sweep_id = str(uuid.uuid4())
    planned = expand(loaded.spec, {t: bt.precisions for t, bt in inventory.board_types.items()})
    with session_scope(db_url) as s:
        sync_boards(s, inventory)
        s.add(
            SweepRow(
                id=sweep_id,
                name=loaded.spec.name,
                source=loaded.source,
                spec_yaml=loaded.text,
                spec_hash=loaded.spec_hash,
                spec=resolved_spec(loaded),
            )
        )
        by_key: dict[str, JobRow] = {}
        for p in planned:
            row = JobRow(
                sweep_id=sweep_id,
                key=p.key,
                kind=p.kind,
                model=p.model,
                precision=p.precision,
                target=p.target,
                batch_size=p.batch_size,
                scenario=p.scenario,
                repeat=p.repeat,
                depends_on_id=by_key[p.depends_on].id if p.depends_on else None,
                state="pending",
            )
            s.add(row)
            s.flush()
            by_key[p.key] = row
        compile_ids = [r.id for r in by_key.values() if r.kind == "compile"]
    return sweep_id, compile_ids


def job_counts(db_url: str, sweep_id: str) -> dict[str, int]:
    with session_scope(db_url) as s:
        return _counts(s, sweep_id)


def _counts(s: Session, sweep_id: str) -> dict[str, int]:
    rows = s.execute(
        select(JobRow.state, func.count()).where(JobRow.sweep_id == sweep_id).group_by(JobRow.state)
    )
    return {state: n for state, n in rows}


def roll_up(db_url: str, sweep_id: str) -> str:
    """Set the sweep's state from its jobs: running until every job is terminal, then done or failed."""
    with session_scope(db_url) as s:  # one transaction: counting and setting happen together
        counts = _counts(s, sweep_id)
        total = sum(counts.values())
        finished = sum(counts.get(t, 0) for t in TERMINAL)
        state = "running" if finished < total else ("failed" if counts.get("failed") else "done")
        sweep = s.get(SweepRow, sweep_id)
        if sweep is not None and sweep.state != state:
            sweep.state = state
            if state != "running":
                sweep.finished_at = utcnow()
    return state


def record_failure(db_url: str, job_id: int, reason: str) -> None:
    """A job failed for good: record why. What follows (its dependents, a stability decision, the sweep's
    roll-up) is :func:`farm.scheduler.after_job`'s."""
    with session_scope(db_url) as s:
        job = s.get(JobRow, job_id)
        if job is not None:
            job.state, job.error, job.finished_at = "failed", reason, utcnow()


def fail_dependents(db_url: str, job_id: int) -> None:
    """The jobs waiting on a failed job fail with it, saying why."""
    with session_scope(db_url) as s:
        job = s.get(JobRow, job_id)
        if job is None:
            return
        waiting = s.scalars(
            select(JobRow).where(JobRow.depends_on_id == job_id, JobRow.state.in_(("pending", "queued")))
        )
        for dep in waiting:
            dep.state, dep.error, dep.finished_at = "failed", f"{job.kind} job failed: {job.error}", utcnow()


def mark_queued(db_url: str, job_id: int) -> str | None:
    """A job handed back to its queue (its board could not take it). Returns its target type, or None when
    the job has finished meanwhile (nothing to hand back)."""
    with session_scope(db_url) as s:
        job = s.get(JobRow, job_id)
        if job is None or job.state in TERMINAL:
            return None
        job.state, job.board_name = "queued", None
        return job.target
