"""Sweep bookkeeping: creating a sweep with its jobs, and rolling job states up into the sweep's."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from farm.db.models import BoardRow, JobRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.fleet.states import set_state, sync_boards
from farm.inventory import Inventory
from farm.leases import cleared, expired, owner_alive, this_process
from farm.sweep.expand import expand
from farm.sweep.load import LoadedSweep

TERMINAL = ("done", "cached", "failed", "cancelled")


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


def create_sweep(
    db_url: str,
    loaded: LoadedSweep,
    inventory: Inventory,
    *,
    labels: dict[str, str] | None = None,
    slot: tuple[str, datetime] | None = None,
) -> tuple[str, list[int]]:
    """Write the sweep and all its jobs in one transaction; return the id and the compile job ids.

    The compile jobs are written queued with no message published yet (``published_at`` NULL): that is
    the outbox. Publishing happens after the commit and is retried by the reconciler until it succeeds, so a
    submitter that dies, or a broker that is down, between the two never leaves a sweep that nobody runs.

    ``labels`` are the sweep's version labels (default: the file's). ``slot`` is the (schedule name, cron
    slot) that submits it: unique in the table, so a second submission of one slot raises IntegrityError
    and writes nothing (farm/schedules/fire.py)."""
    sweep_id = str(uuid.uuid4())
    planned = expand(loaded.spec, inventory.precisions_of(loaded.spec.targets))
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
                labels=dict(loaded.spec.labels) if labels is None else labels,
                schedule_name=slot[0] if slot else None,
                schedule_slot=slot[1] if slot else None,
            )
        )
        s.flush()  # a duplicate slot fails here, before any job is planned
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
                state="queued" if p.kind == "compile" else "pending",
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
    """Set the sweep's state from its jobs: running until every job is terminal, then cancelled, failed or
    done."""
    with session_scope(db_url) as s:  # one transaction: counting and setting happen together
        counts = _counts(s, sweep_id)
        total = sum(counts.values())
        finished = sum(counts.get(t, 0) for t in TERMINAL)
        state = "running"
        if finished == total:
            state = "cancelled" if counts.get("cancelled") else "failed" if counts.get("failed") else "done"
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
        s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state.not_in(TERMINAL))
            .values(state="failed", error=reason, finished_at=utcnow(), **cleared())
        )


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


def cancel_sweep(db_url: str, sweep_id: str, reason: str) -> list[int]:
    """Every unfinished job of the sweep is cancelled with ``reason``; returns their ids. A job running
    under a live lease keeps its board until its worker returns (it then stores nothing and frees the
    board); the boards of jobs whose owner is this process (an embedded sweep being interrupted) or gone
    are freed here."""
    with session_scope(db_url) as s:
        jobs = list(
            s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id, JobRow.state.not_in(TERMINAL)))
        )
        now = utcnow()
        freed = [
            j.id
            for j in jobs
            if j.state == "running"
            and (
                this_process(j.lease_owner)
                or owner_alive(j.lease_owner) is False
                or expired(j.lease_expires_at, now)
            )
        ]
        for j in jobs:
            j.state, j.error, j.finished_at = "cancelled", reason, now
            j.lease_owner = j.lease_expires_at = None
    for job_id in freed:
        release_board_of(db_url, job_id, f"job {job_id} cancelled")
    roll_up(db_url, sweep_id)
    return [j.id for j in jobs]


def release_board_of(db_url: str, job_id: int, reason: str) -> str | None:
    """The board claimed for ``job_id`` (if one still is) goes back to idle; returns its name."""
    with session_scope(db_url) as s:
        board = s.scalar(
            select(BoardRow).where(BoardRow.current_job_id == job_id, BoardRow.state == "running")
        )
        if board is None:
            return None
        name = board.name
        set_state(db_url, name, "idle", reason, only_from=("running",), session=s, only_job=job_id)
        return name
