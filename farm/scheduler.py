"""What follows a finished job, decided in one place.

Every job, when it ends (stored, cached, failed for good, or handed back), comes here once through
:func:`after_job`, which reads the job's state from the database and returns the work that follows: the
run jobs waiting on a compile, an extra stability repeat, and whatever the registered result sinks ask for
after a stored run (alert scans, confirmation runs). It also rolls the sweep's state up. It never publishes
anything itself: it returns :class:`Publish` items and the task layer (``workers/tasks.py``) or the
submitter hands them to :func:`farm.publish.publish`. Domain code therefore never imports the Celery tasks.

Every decision is idempotent, so a redelivered job that comes through again decides the same and adds
nothing: a job moves pending -> queued once (a conditional UPDATE, :func:`claim_for_queue`), and a repeat's
row has a unique key (:func:`farm.services.stability.plan_after_run`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select, update

from farm import sinks
from farm.db.models import JobRow, RunRow
from farm.db.session import session_scope
from farm.queues import COMPILE_QUEUE, COMPILE_TASK, RUN_TASK, Publish, run_queue
from farm.services import stability
from farm.services.sweeps import fail_dependents, record_failure, roll_up

log = logging.getLogger(__name__)


def claim_for_queue(db_url: str, job_ids: Iterable[int]) -> list[int]:
    """Mark pending jobs queued (in the outbox: not yet published); return those this caller won (and so
    must publish)."""
    won: list[int] = []
    with session_scope(db_url) as s:
        for job_id in job_ids:
            res = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == "pending")
                .values(state="queued", published_at=None, message_id=None)
            )
            if res.rowcount == 1:
                won.append(job_id)
    return won


def message_for(kind: str, job_id: int, target: str) -> Publish:
    """The message that runs a job: compile jobs on the compile queue, the others on their type's queue."""
    if kind == "compile":
        return Publish(COMPILE_TASK, job_id, COMPILE_QUEUE)
    return Publish(RUN_TASK, job_id, run_queue(target))


def unpublished(
    db_url: str, *, sweep_id: str | None = None, job_ids: Iterable[int] | None = None
) -> list[Publish]:
    """The outbox: queued jobs whose message was never published (of one sweep, or these jobs)."""
    query = select(JobRow.id, JobRow.kind, JobRow.target).where(
        JobRow.state == "queued", JobRow.published_at.is_(None)
    )
    if sweep_id is not None:
        query = query.where(JobRow.sweep_id == sweep_id)
    if job_ids is not None:
        query = query.where(JobRow.id.in_(list(job_ids)))
    with session_scope(db_url) as s:
        return [
            message_for(kind, job_id, target) for job_id, kind, target in s.execute(query.order_by(JobRow.id))
        ]


def republish(db_url: str, job_id: int) -> list[Publish]:
    """A queued job's message again (its board handed it back, or its message was lost)."""
    with session_scope(db_url) as s:
        s.execute(
            update(JobRow).where(JobRow.id == job_id, JobRow.state == "queued").values(published_at=None)
        )
    return unpublished(db_url, job_ids=[job_id])


def compiles(db_url: str, job_ids: Iterable[int]) -> list[Publish]:
    """A new sweep's compile jobs (written queued, in the outbox), each published once."""
    return unpublished(db_url, job_ids=job_ids)


def runs(db_url: str, jobs: Iterable[tuple[int, str]]) -> list[Publish]:
    """Run jobs ``(job id, board type)``, each published once, to their board type's queue."""
    targets = dict(jobs)
    return [Publish(RUN_TASK, j, run_queue(targets[j])) for j in claim_for_queue(db_url, list(targets))]


def after_job(db_url: str, job_id: int) -> list[Publish]:
    """Called once a job has ended (and again, harmlessly, on a redelivery): what follows it."""
    with session_scope(db_url) as s:
        job = s.get(JobRow, job_id)
        if job is None:
            return []
        kind, state, target, sweep_id = job.kind, job.state, job.target, job.sweep_id
        run_id = s.scalar(select(RunRow.id).where(RunRow.job_id == job_id)) if state == "done" else None
    follow: list[Publish] = []
    if state == "failed":
        fail_dependents(db_url, job_id)
    elif kind == "compile" and state in ("done", "cached"):
        follow += runs(db_url, [(j, target) for j in _waiting_on(db_url, job_id)])
    if run_id is not None:  # a stored run (or soak): the post-store hook
        follow += sinks.stored(db_url, run_id)
    if kind == "run" and state in ("done", "failed"):
        # before the roll-up, so the sweep never looks finished while a repeat is being added
        follow += runs(db_url, stability.plan_after_run(db_url, job_id))
    roll_up(db_url, sweep_id)
    return follow


def failed(db_url: str, job_id: int, reason: str) -> list[Publish]:
    """A job failed for good: record why, then decide what follows (its dependents fail with it; a run job
    that was its configuration's last repeat still gets its stability decision)."""
    record_failure(db_url, job_id, reason)
    return after_job(db_url, job_id)


def _waiting_on(db_url: str, job_id: int) -> list[int]:
    with session_scope(db_url) as s:
        return list(
            s.scalars(select(JobRow.id).where(JobRow.depends_on_id == job_id, JobRow.state == "pending"))
        )
