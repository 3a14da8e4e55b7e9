"""Run jobs: take a board of the target type, run the agent on it, store the result exactly once.

The job's flow only: the board claim is farm/services/claims.py, the agent's config
farm/services/agent_config.py, the result's rows farm/services/results.py. ``BoardUnavailable``,
``BoardsBusy`` and ``NoHealthyBoard`` are what :func:`run_run_job` raises for the task layer besides
InfraError.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm import leases
from farm.accuracy.runs import accuracy_config, extra_timeout_s
from farm.artifacts import ArtifactStore
from farm.config import Settings
from farm.db.models import ArtifactRow, JobRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.errors import InfraError
from farm.fleet.transports import transport_for
from farm.inventory import Board, Inventory, load_inventory
from farm.services import agent_config, stability
from farm.services.claims import (
    BoardsBusy,
    BoardUnavailable,
    NoHealthyBoard,
    NotOurs,
    board_failed,
    claim_board,
    release,
)
from farm.services.results import received_report, store_result
from farm.services.sweeps import TERMINAL, record_failure
from farm.sweep.schema import Sweep
from farm.transport.base import Transport
from farm.workers.agent.protocol import read, section

__all__ = ["BoardUnavailable", "BoardsBusy", "NoHealthyBoard", "run_run_job"]


def run_run_job(
    settings: Settings,
    job_id: int,
    *,
    transport: Transport | None = None,
    only_board: str | None = None,
    cancelled: leases.LeaseLost | None = None,
) -> str:
    """Measure and store one run job; returns its final state ("done", "failed", "cancelled", or
    "duplicate" when the job is another worker's). Raises InfraError for the task layer to retry. What
    follows (repeats, roll-up, result sinks) is decided by :func:`farm.scheduler.after_job`, which the task
    calls once this returns, with the board already free. ``only_board``: the board whose own queue
    delivered the job (a worker host claims that one). ``cancelled`` (the lease heartbeat's "lost" event):
    once set, the agent is stopped mid-run (``Transport.cancel``) and nothing is stored."""
    received = utcnow()  # the job's start as the farm sees it: overhead is measured from here
    with session_scope(settings.db_url) as s:  # one read for all the job needs (it runs per job)
        job = s.get(JobRow, job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        finished = job.state if job.state in TERMINAL else None
        if finished is None:
            artifact, spec = _inputs(s, job)
            s.expunge_all()  # detached copies for use after the transaction
    if finished is not None:  # redelivered after it finished: what follows is the scheduler's, as always
        return finished

    inventory = load_inventory(settings.inventory_dir)
    try:
        board = claim_board(settings, inventory, job.target, job_id, received, only=only_board)
    except NotOurs:
        return "duplicate"
    released = False  # the board goes back to idle in the result's own transaction when all went well
    try:
        job.board_name = board.name
        try:
            report = _measure(settings, inventory, board, spec, job, artifact, transport, cancelled)
        except InfraError as exc:
            ended = _not_ours(settings, job_id, cancelled)
            if ended:  # stopped because it was cancelled or taken back: not the board's fault
                return ended
            board_failed(settings, inventory, board, job.target, str(exc))
            raise
        if cancelled is not None and cancelled.is_set():  # stopped, or its report is another's to store
            return _not_ours(settings, job_id, cancelled) or "duplicate"
        if read(report, "status") != "ok":
            err = section(report, "error")  # the contract's error.kind and error.message
            message = err.get("message", "agent reported an error")
            if err.get("kind") == "model":
                record_failure(settings.db_url, job_id, f"{stability.MODEL_ERROR} {message}")
                return "failed"
            board_failed(settings, inventory, board, job.target, f"agent: {message}")
            raise InfraError(f"agent: {message}")
        stored = store_result(
            settings, job, artifact, board, inventory.board_types[job.target].source, report, release=True
        )
        released = True
        if stored:
            return "done"
        return _state(settings, job_id) or "done"  # stored before (a redelivery), or cancelled meanwhile
    finally:
        if not released:
            release(settings, board, job_id)


def _not_ours(settings: Settings, job_id: int, cancelled: leases.LeaseLost | None) -> str | None:
    """What a run that stopped being ours ends as: "cancelled" (the job was), "duplicate" (its lease was
    lost: another worker runs it now), or None while it is still ours. One read of the job's state."""
    if _state(settings, job_id) == "cancelled":
        return "cancelled"
    return "duplicate" if cancelled is not None and cancelled.is_set() else None


def _state(settings: Settings, job_id: int) -> str | None:
    with session_scope(settings.db_url) as s:
        return s.scalar(select(JobRow.state).where(JobRow.id == job_id))


def _inputs(s: Session, job: JobRow) -> tuple[ArtifactRow, Sweep]:
    """The artifact a run job measures (its compile job's) and the sweep's spec."""
    parent = s.get(JobRow, job.depends_on_id) if job.depends_on_id else None
    if parent is None or parent.artifact_key is None:
        raise InfraError(f"job {job.id}: its compile job has no artifact yet")
    artifact = s.get(ArtifactRow, parent.artifact_key)
    sweep = s.get(SweepRow, job.sweep_id)
    assert artifact is not None and sweep is not None
    return artifact, Sweep.model_validate(sweep.spec)


def _measure(
    settings: Settings,
    inventory: Inventory,
    board: Board,
    spec: Sweep,
    job: JobRow,
    artifact: ArtifactRow,
    transport: Transport | None,
    cancelled: leases.LeaseLost | None = None,
) -> dict[str, Any]:
    """Ship the artifact, run the agent, read its report (checked against the contract). InfraError for
    anything the board got wrong."""
    store = ArtifactStore(settings.artifact_dir)
    local_path = store.model_path(artifact.key)
    if not local_path.is_file():
        raise InfraError(f"artifact {artifact.key[:12]} is missing from the store at {settings.artifact_dir}")
    transport = transport or transport_for(inventory, board)
    sent_before = getattr(transport, "bytes_uploaded", 0) + getattr(transport, "agent_bytes_uploaded", 0)
    config = agent_config.agent_config(
        spec,
        job,
        artifact,
        transport.artifact_path(artifact.key, local_path),
        inventory.board_types[job.target].backend,
        transport.log_dir(settings.data_dir, job.sweep_id, f"job-{job.id}"),
        board,
        inventory.board_types[job.target],
    )
    accuracy = accuracy_config(settings, spec, job, artifact, config, transport)  # farm/accuracy/runs.py
    config = agent_config.with_packs(config, accuracy)
    timeout = agent_config.timeout_s(settings, spec, job, config) + extra_timeout_s(accuracy)
    with leases.on_lost(cancelled, transport.cancel):
        outcome = transport.run_agent(config, timeout)
    sent = (
        getattr(transport, "bytes_uploaded", 0) + getattr(transport, "agent_bytes_uploaded", 0) - sent_before
    )
    return received_report(outcome, sent)
