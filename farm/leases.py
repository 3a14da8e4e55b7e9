"""Job leases: the database says who runs a job now and until when.

A worker that starts a job takes its lease in the same transaction that moves it to running (and, for a
run job, claims its board); while the job runs a heartbeat thread extends the lease; the result's
transaction (or the failure's) gives it up. A lease that expires means its owner is gone (process killed,
worker host rebooted, network cut): the reconciler (farm/reconciler.py) puts the job back in the queue and
frees its board. A second message for a job whose lease is live is a duplicate and does nothing.

Costs: one small UPDATE per heartbeat per running job (every ``lease_s / 4``), and a job whose worker
died is taken back at most ``lease_s`` + one reconciler period after its last heartbeat. The default lease
(60 s) is far above a heartbeat's cost and well below Redis's redelivery timeout (7,400 s), which it
replaces as the way a lost job comes back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from farm.config import load_settings
from farm.db.models import JobRow, utcnow
from farm.db.session import session_scope

log = logging.getLogger(__name__)


def lease_s() -> float:
    """A running job's lease (FARM_LEASE_S, default 60 s)."""
    return load_settings().lease_s


def owner() -> str:
    """This thread of this process, as a lease names it: ``host:pid:thread`` (the reconciler checks a local
    pid directly; the thread keeps two embedded runners of one process from taking each other's jobs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def owner_alive(name: str | None) -> bool | None:
    """Whether a lease owner's process on this host still runs (True/False); None for another host's (only
    its lease's expiry tells)."""
    parts = (name or "").split(":")
    if len(parts) < 3:
        return None
    host, pid = ":".join(parts[:-2]), parts[-2]
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def expired(expires_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a lease that ends at ``expires_at`` is over (no expiry: no lease to respect)."""
    if expires_at is None:
        return True
    if expires_at.tzinfo is None:  # SQLite hands timestamps back without their zone; they were stored as UTC
        expires_at = expires_at.replace(tzinfo=timezone.utc)
    return expires_at < (now or utcnow())


def this_process(name: str | None) -> bool:
    """Whether a lease owner is a thread of this very process."""
    return bool(name) and name.rsplit(":", 1)[0] == owner().rsplit(":", 1)[0]


def cleared() -> dict[str, Any]:
    """The columns that give a lease up (merge into the UPDATE that ends or hands back a job)."""
    return {"lease_owner": None, "lease_expires_at": None}


def take(s: Session, job_id: int, *, started_at: datetime | None = None, board: str | None = None) -> bool:
    """In the caller's transaction: start job ``job_id`` under this process's lease. It must be queued
    (or pending), or running under a lease that expired, is ours, or has no owner (a job left running by a
    farm before leases). False: someone else holds a live lease, or the job ended or was cancelled."""
    now = utcnow()
    me = owner()
    values: dict[str, Any] = {
        "state": "running",
        "lease_owner": me,
        "lease_expires_at": now + timedelta(seconds=lease_s()),
        "heartbeat_at": now,
        "started_at": started_at or now,
        "attempts": JobRow.attempts + 1,
    }
    if board is not None:
        values["board_name"] = board
    takeable = or_(
        JobRow.state.in_(("queued", "pending")),
        and_(
            JobRow.state == "running",
            or_(JobRow.lease_owner.is_(None), JobRow.lease_owner == me, JobRow.lease_expires_at < now),
        ),
    )
    res = s.execute(update(JobRow).where(JobRow.id == job_id, takeable).values(**values))
    return res.rowcount == 1


def renew(db_url: str, job_id: int, holder: str | None = None) -> bool | None:
    """Extend the lease ``holder`` (default: this thread) has on a running job: True when renewed, None when
    the job has not started yet (still queued: waiting for a board), False when it is no longer ours (ended,
    cancelled, taken back)."""
    now = utcnow()
    holder = holder or owner()
    with session_scope(db_url) as s:
        res = s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state == "running", JobRow.lease_owner == holder)
            .values(lease_expires_at=now + timedelta(seconds=lease_s()), heartbeat_at=now)
        )
        if res.rowcount == 1:
            return True
        state = s.scalar(select(JobRow.state).where(JobRow.id == job_id))
        return None if state in ("queued", "pending") else False


def hand_back(db_url: str, job_id: int, *, published: bool) -> None:
    """A job this process will not finish now (a retry is coming, or its board could not take it): queued
    again, lease given up. ``published``: a message for it is already on its way (a Celery retry)."""
    with session_scope(db_url) as s:
        s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state == "running", JobRow.lease_owner == owner())
            .values(
                state="queued", board_name=None, published_at=utcnow() if published else None, **cleared()
            )
        )


class LeaseLost(threading.Event):
    """Set by the heartbeat once the job's lease is lost (the job was cancelled or taken back). Actions
    registered with :meth:`on_set` run at that moment, on the heartbeat's thread: how a cancelled job's
    agent is stopped mid-run instead of running to its end, with no thread of its own."""

    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.Lock()  # an action never runs once its body has ended
        self._actions: list[Callable[[], None]] = []

    def set(self) -> None:
        with self._guard:
            super().set()
            actions, self._actions = self._actions, []
            for action in actions:
                _run(action)

    @contextlib.contextmanager
    def on_set(self, action: Callable[[], None]) -> Iterator[None]:
        """Run ``action`` if the lease is lost while the body runs (at once if it already is)."""
        with self._guard:
            if self.is_set():
                _run(action)
            else:
                self._actions.append(action)
        try:
            yield
        finally:
            with self._guard:
                if action in self._actions:
                    self._actions.remove(action)


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception:  # best effort: the job's own timeout still bounds it
        log.warning("stopping a cancelled job's agent failed", exc_info=True)


@contextlib.contextmanager
def on_lost(lost: LeaseLost | None, action: Callable[[], None]) -> Iterator[None]:
    """``lost.on_set(action)``, or nothing when there is no lease to lose (a job run without one)."""
    if lost is None:
        yield
        return
    with lost.on_set(action):
        yield


@contextlib.contextmanager
def heartbeat(db_url: str, job_id: int) -> Iterator[LeaseLost]:
    """Renew the lease every ``lease_s / 4`` while the body runs. The event is set once the lease is lost
    (the job was cancelled or taken back): the body may check it, or register what stops it early."""
    lost = LeaseLost()
    stop = threading.Event()
    period = lease_s() / 4
    holder = owner()  # the job's thread, which takes the lease: the beat runs on a thread of its own

    def beat() -> None:
        while not stop.wait(period):
            try:
                if renew(db_url, job_id, holder) is False:
                    lost.set()
                    return
            except Exception as exc:  # the database is down: try again next period; the lease may expire
                log.warning("lease heartbeat for job %s failed: %s", job_id, exc)

    thread = threading.Thread(target=beat, name=f"lease-{job_id}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)
