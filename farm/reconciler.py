"""The reconciler: the database is the truth, so whatever the broker, a worker or a submitter lost, it
finds from the database and puts right. It runs periodically (Celery beat's ``farm.reconcile`` in
distributed mode; inside the embedded runner while a sweep runs) and on demand (``farm retry --stuck``).

What it fixes, each with a reason an operator can read (``farm status`` shows the same findings before
anything is done):

1. a running job whose lease expired, or whose owner on this host is gone -> queued again (its board freed);
2. a board claimed for a job that no live owner runs -> idle;
3. a run job still pending although its compile finished (the compile's worker died before handing it
   out) -> queued;
4. a queued job never published (the submitter died, the broker was down) -> published; a queued job whose
   message is gone from the broker (Redis restarted from an older save) -> published again;
5. a running sweep whose jobs have all ended -> rolled up.

Guarantees: delivery is at-least-once (a job may be published twice), the store is idempotent (one result
per job: the idempotency key) and a job runs only under a live lease, so two deliveries never both run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from farm import leases
from farm.db.models import JobRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.publish import EAGER_PREFIX
from farm.queues import Publish
from farm.scheduler import claim_for_queue, message_for
from farm.services.claims import free_orphaned_boards
from farm.services.sweeps import TERMINAL, fail_dependents, release_board_of, roll_up

log = logging.getLogger(__name__)

#: A published job's message is looked for in the broker only once it is this old (it may be in flight).
PUBLISH_GRACE_S = 30.0


@dataclass(frozen=True)
class Finding:
    problem: str
    action: str
    job_id: int | None = None
    sweep_id: str | None = None
    board: str | None = None


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    publish: list[Publish] = field(default_factory=list)


def reconcile(
    db_url: str,
    *,
    sweep_id: str | None = None,
    live_messages: set[str] | None = None,
    act: bool = True,
    now: datetime | None = None,
    grace_s: float = PUBLISH_GRACE_S,
) -> Report:
    """Find (and with ``act``, fix) what was lost. ``live_messages``: the broker's message ids (None: not
    known, so only never-published jobs are published). Returns the findings and what to publish."""
    now = now or utcnow()
    report = Report()
    _expired_leases(db_url, sweep_id, now, act, report)
    _orphaned_boards(db_url, act, report)
    _pending_after_compile(db_url, sweep_id, act, report)
    _unpublished(db_url, sweep_id, live_messages, now - timedelta(seconds=grace_s), act, report)
    _finished_sweeps(db_url, sweep_id, act, report)
    for f in report.findings:
        log.info("reconciler: %s -> %s", f.problem, f.action)
    return report


def _jobs(sweep_id: str | None, *conditions):
    query = select(JobRow).where(*conditions)
    return query.where(JobRow.sweep_id == sweep_id) if sweep_id is not None else query


def _expired_leases(db_url: str, sweep_id: str | None, now: datetime, act: bool, report: Report) -> None:
    with session_scope(db_url) as s:
        running = list(s.scalars(_jobs(sweep_id, JobRow.state == "running", JobRow.lease_owner.is_not(None))))
        lost = []
        for job in running:
            gone = leases.owner_alive(job.lease_owner) is False
            if gone or leases.expired(job.lease_expires_at, now):
                why = "its worker is gone" if gone else "its lease expired"
                lost.append((job.id, job.sweep_id, job.lease_owner, job.lease_expires_at, why))
    for job_id, job_sweep, owner, expires, why in lost:
        report.findings.append(
            Finding(
                f"job {job_id} is running but {why} (owner {owner}, lease until {_hms(expires)})",
                "queue it again and free its board",
                job_id,
                job_sweep,
            )
        )
        if not act:
            continue
        with session_scope(db_url) as s:
            taken = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == "running", JobRow.lease_owner == owner)
                .values(state="queued", published_at=None, board_name=None, **leases.cleared())
            ).rowcount
        if taken:
            release_board_of(db_url, job_id, f"released: job {job_id} taken back ({why})")


def _orphaned_boards(db_url: str, act: bool, report: Report) -> None:
    if act:
        for name in free_orphaned_boards(db_url):
            report.findings.append(Finding(f"board {name} was claimed by no live job", "freed", board=name))


def _pending_after_compile(db_url: str, sweep_id: str | None, act: bool, report: Report) -> None:
    parent = JobRow.__table__.alias("parent")
    query = (
        select(JobRow.id, JobRow.sweep_id, parent.c.id, parent.c.state)
        .join(parent, parent.c.id == JobRow.depends_on_id)
        .where(JobRow.state == "pending", parent.c.state.in_(("done", "cached", "failed", "cancelled")))
    )
    if sweep_id is not None:
        query = query.where(JobRow.sweep_id == sweep_id)
    with session_scope(db_url) as s:
        rows = list(s.execute(query))
    failed_parents = set()
    ready = []
    for job_id, job_sweep, parent_id, parent_state in rows:
        if parent_state in ("done", "cached"):
            report.findings.append(
                Finding(
                    f"job {job_id} is pending although its compile job {parent_id} is {parent_state}",
                    "queue it",
                    job_id,
                    job_sweep,
                )
            )
            ready.append(job_id)
        else:
            report.findings.append(
                Finding(
                    f"job {job_id} is pending although its compile job {parent_id} is {parent_state}",
                    "end it with its compile job",
                    job_id,
                    job_sweep,
                )
            )
            failed_parents.add(parent_id)
    if act:
        claim_for_queue(db_url, ready)  # published by _unpublished below
        for parent_id in failed_parents:
            fail_dependents(db_url, parent_id)


def _unpublished(
    db_url: str, sweep_id: str | None, live: set[str] | None, grace: datetime, act: bool, report: Report
) -> None:
    with session_scope(db_url) as s:
        queued = list(
            s.execute(
                select(
                    JobRow.id,
                    JobRow.sweep_id,
                    JobRow.kind,
                    JobRow.target,
                    JobRow.published_at,
                    JobRow.message_id,
                )
                .where(JobRow.state == "queued", *([JobRow.sweep_id == sweep_id] if sweep_id else []))
                .order_by(JobRow.id)
            )
        )
    for job_id, job_sweep, kind, target, published_at, mid in queued:
        eager_owner = mid[len(EAGER_PREFIX) :] if mid and mid.startswith(EAGER_PREFIX) else None
        if published_at is None:
            problem = f"job {job_id} is queued but was never published"
        elif eager_owner is not None and leases.owner_alive(eager_owner) is False:
            problem = f"job {job_id} is queued for an embedded runner that is gone ({eager_owner})"
        elif live is not None and mid not in live and not _after(published_at, grace):
            problem = f"job {job_id} is queued but its message {mid} is not in the broker"
        else:
            continue
        report.findings.append(Finding(problem, "publish it", job_id, job_sweep))
        if act:
            if published_at is not None:
                with session_scope(db_url) as s:
                    s.execute(
                        update(JobRow)
                        .where(JobRow.id == job_id, JobRow.state == "queued")
                        .values(published_at=None)
                    )
            report.publish.append(message_for(kind, job_id, target))


def _finished_sweeps(db_url: str, sweep_id: str | None, act: bool, report: Report) -> None:
    with session_scope(db_url) as s:
        query = select(SweepRow.id).where(SweepRow.state == "running")
        if sweep_id is not None:
            query = query.where(SweepRow.id == sweep_id)
        running = list(s.scalars(query))
        done = [
            sid
            for sid in running
            if s.scalar(
                select(JobRow.id).where(JobRow.sweep_id == sid, JobRow.state.not_in(TERMINAL)).limit(1)
            )
            is None
        ]
    for sid in done:
        report.findings.append(
            Finding(f"sweep {sid[:8]} is running but all its jobs have ended", "roll it up", sweep_id=sid)
        )
        if act:
            roll_up(db_url, sid)


def _after(ts: datetime, than: datetime) -> bool:
    return not leases.expired(ts, than)


def _hms(ts: datetime | None) -> str:
    return ts.strftime("%H:%M:%S") if ts else "-"
