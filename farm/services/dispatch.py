"""Putting jobs on queues. Job rows move pending -> queued exactly once (a conditional UPDATE), so
re-dispatching after a redelivery never enqueues the same job twice."""

from __future__ import annotations

from sqlalchemy import update

from farm.db.models import JobRow
from farm.db.session import session_scope
from farm.queues import COMPILE_QUEUE, run_queue


def claim_for_queue(db_url: str, job_ids: list[int]) -> list[int]:
    """Mark pending jobs queued; return those this caller won (and so must enqueue)."""
    won: list[int] = []
    with session_scope(db_url) as s:
        for job_id in job_ids:
            res = s.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.state == "pending").values(state="queued")
            )
            if res.rowcount == 1:
                won.append(job_id)
    return won


def enqueue_compile(db_url: str, job_ids: list[int]) -> None:
    from workers.tasks import compile_task

    for job_id in claim_for_queue(db_url, job_ids):
        compile_task.apply_async(args=[job_id], queue=COMPILE_QUEUE)


def enqueue_runs(db_url: str, jobs: list[tuple[int, str]]) -> None:
    """jobs: (job id, board type)."""
    from workers.tasks import run_task

    targets = dict(jobs)
    for job_id in claim_for_queue(db_url, [j for j, _ in jobs]):
        run_task.apply_async(args=[job_id], queue=run_queue(targets[job_id]))
