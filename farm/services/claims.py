"""Board claims for run jobs: take a board of the job's type (idle -> running, with the job's own move to
running in the same transaction), give it back, or mark it bad after an infrastructure failure."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm import leases
from farm.config import Settings
from farm.db.models import BoardRow, JobRow, utcnow
from farm.db.session import session_scope
from farm.errors import FarmError, InfraError
from farm.fleet import host, states
from farm.fleet.transports import forget
from farm.inventory import Board, Inventory
from farm.targets import host_type

log = logging.getLogger(__name__)

EMBEDDED_WAIT_S = 0.5  # an embedded job waiting for a busy board looks again this often
ORPHAN_CHECK_S = 5.0  # ...and frees boards whose owner is gone this often
#: A worker host's job whose boards are all busy waits this long for one (with a thread per board, a free
#: thread usually means a board is about to be freed) before it hands the job back to its queue.
HOST_WAIT_S = 5.0
HOST_POLL_S = 0.2


class BoardUnavailable(FarmError):
    """This worker's board may not take jobs now (bad, drained, retired): the job goes back to the queue."""

    def __init__(self, board: str, state: str, message: str | None = None) -> None:
        super().__init__(message or f"board {board} is {state}")
        self.board, self.state = board, state


class BoardsBusy(InfraError):
    """Every board of the job's type on this worker host is running a job: the job goes back to its queue
    (an InfraError, so a caller that does not hand it back retries it)."""


class NoHealthyBoard(FarmError):
    """No board of the job's type can take it: failing the job beats leaving it queued forever."""


class NotOurs(FarmError):
    """The job is running under another worker's live lease, or it ended or was cancelled: this delivery
    of it is a duplicate and does nothing."""


class _NoBoard(Exception):
    """Rolls back a job's start when its board could not be claimed in the same transaction."""


def claim_board(
    settings: Settings,
    inventory: Inventory,
    target: str,
    job_id: int,
    received: datetime | None = None,
    *,
    only: str | None = None,
) -> Board:
    """The board this job runs on, moved idle -> running atomically, in the same transaction as the job's
    own move to running (started at ``received``, one more attempt, on that board).

    A worker bound to one board (`farm worker --board`) uses that board or hands the job back; a worker
    host (several boards) takes the first idle one of the type among its own (:func:`_claim_on_host`;
    ``only``: the board whose own queue delivered the job); an unbound worker (embedded mode) takes the
    first idle board of the type, and waits its turn while every usable board of the type is busy
    (another sweep's, perhaps another process's: the wait frees boards whose owner is gone). Raises
    :class:`NotOurs` for a job it must not run."""
    bound = settings.bound_boards
    if len(bound) == 1:
        board = inventory.board(bound[0])
        if _claim(settings, board, job_id, received):
            return board
        raise BoardUnavailable(board.name, states.get_state(settings.db_url, board.name).state)
    if bound:
        mine = [only] if only in bound else [n for n in bound if inventory.board(n).type == host_type(target)]
        return _claim_on_host(settings, [inventory.board(n) for n in mine], target, job_id, received)
    candidates = [b for b in inventory.boards_of(target) if b.transport == "local"] or inventory.boards_of(
        target
    )
    next_orphan_check: float | None = None  # None until the first wait
    while True:
        for board in candidates:
            if _claim(settings, board, job_id, received):
                return board
        usable = [
            b.name for b in candidates if states.get_state(settings.db_url, b.name).state in states.USABLE
        ]
        if not usable:
            raise NoHealthyBoard(f"no healthy board of type {target!r}: {_states_of(settings, candidates)}")
        if not settings.embedded:
            raise InfraError(f"every board of type {target!r} is busy")
        if next_orphan_check is None:
            next_orphan_check = time.monotonic() + ORPHAN_CHECK_S
            log.info(
                "job %s waits for a board of type %r (busy: %s)",
                job_id,
                target,
                _states_of(settings, candidates),
            )
        time.sleep(EMBEDDED_WAIT_S)
        if time.monotonic() >= next_orphan_check:
            next_orphan_check = time.monotonic() + ORPHAN_CHECK_S
            free_orphaned_boards(settings.db_url, [b.name for b in candidates])


def _claim_on_host(
    settings: Settings, mine: list[Board], target: str, job_id: int, received: datetime | None
) -> Board:
    """The first idle board among this host's ``mine`` that its keeper lets take jobs, looked for again for
    up to HOST_WAIT_S while one of them is busy. :class:`BoardUnavailable` when none may take jobs
    (drained, bad, retired, or failing its checks: the host stops taking the type's jobs),
    :class:`BoardsBusy` when all stay busy."""
    deadline = time.monotonic() + HOST_WAIT_S
    while True:
        allowed = _allowed(mine)
        for board in allowed:
            if _claim(settings, board, job_id, received):
                return board
        if not any(states.get_state(settings.db_url, b.name).state in states.USABLE for b in allowed):
            said = _states_of(settings, mine) if mine else "none on this host"
            held = [b.name for b in mine if b not in allowed]
            if held:
                said += f"; taking no jobs until a check passes: {', '.join(held)}"
            names = ",".join(b.name for b in mine)
            raise BoardUnavailable(names, "unusable", f"no board of type {target!r} here: {said}")
        if time.monotonic() >= deadline:
            raise BoardsBusy(f"every board of type {target!r} on this host is busy")
        time.sleep(HOST_POLL_S)


def _allowed(boards: list[Board]) -> list[Board]:
    """The boards whose keeper lets them take jobs now, when this process is a worker host (farm/fleet/
    host.py); all of them otherwise."""
    worker_host = host.current()
    return boards if worker_host is None else [b for b in boards if worker_host.taking_jobs(b.name)]


def _claim(settings: Settings, board: Board, job_id: int, received: datetime | None) -> bool:
    """The job starts under this process's lease and its board moves idle -> running, in one transaction."""
    try:
        with session_scope(settings.db_url) as s:
            if not leases.take(s, job_id, started_at=received or utcnow(), board=board.name):
                raise NotOurs(
                    f"job {job_id} is not this worker's to run (running elsewhere, ended or cancelled)"
                )
            if not states.set_state(
                settings.db_url,
                board.name,
                "running",
                f"job {job_id}",
                only_from=("idle",),
                job_id=job_id,
                session=s,
            ):
                raise _NoBoard
            return True
    except _NoBoard:
        return False


def free_orphaned_boards(db_url: str, names: list[str] | None = None) -> list[str]:
    """Boards claimed for a job that no live owner runs any more (the job ended, or its lease expired, or
    its owner on this host is gone) go back to idle; returns their names."""
    freed = []
    with session_scope(db_url) as s:
        query = select(BoardRow.name, BoardRow.current_job_id).where(BoardRow.state == "running")
        if names is not None:
            query = query.where(BoardRow.name.in_(names))
        claimed = list(s.execute(query))
    for name, job_id in claimed:
        with session_scope(db_url) as s:
            job = s.get(JobRow, job_id) if job_id is not None else None
            why = _orphan_reason(job, job_id)
            if why and states.set_state(
                db_url, name, "idle", f"released: {why}", only_from=("running",), session=s, only_job=job_id
            ):
                freed.append(name)
    return freed


def _orphan_reason(job: JobRow | None, job_id: int | None) -> str | None:
    if job is None:
        return f"its job {job_id} does not exist"
    if job.state != "running":
        return f"its job {job.id} is {job.state}"
    if leases.owner_alive(job.lease_owner) is False:
        return f"job {job.id}'s worker {job.lease_owner} is gone"
    if job.lease_owner is not None and leases.expired(job.lease_expires_at):
        return f"job {job.id}'s lease expired (owner {job.lease_owner})"
    return None


def _states_of(settings: Settings, boards: list[Board]) -> str:
    parts = []
    for b in boards:
        st = states.get_state(settings.db_url, b.name)
        parts.append(f"{b.name} {st.state}" + (f" ({st.reason})" if st.reason else ""))
    return "; ".join(parts) or "none in the inventory"


def release(settings: Settings, board: Board, job_id: int, session: Session | None = None) -> None:
    """The board is idle again (only if it is still running this worker's job: a drain or a bad state set
    meanwhile stays)."""
    states.set_state(
        settings.db_url, board.name, "idle", f"job {job_id} finished", only_from=("running",), session=session
    )


def board_failed(settings: Settings, inventory: Inventory, board: Board, target: str, reason: str) -> None:
    """An infrastructure failure on this board: it goes bad; the job is retried on another board of the
    type if there is one, else it fails now with the reason (a sweep never waits on a queue nobody serves)."""
    states.set_state(settings.db_url, board.name, "bad", reason, only_from=("running", "idle"))
    forget(board.name)
    others = states.boards_usable(settings.db_url, target, exclude=board.name)
    if not others:
        raise NoHealthyBoard(
            f"{reason} (board {board.name} is now bad; no other healthy board of type {target!r})"
        )
