"""Board claims for run jobs: take a board of the job's type (idle -> running, with the job's own move to
running in the same transaction), give it back, or mark it bad after an infrastructure failure."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from farm.config import Settings
from farm.db.models import JobRow, utcnow
from farm.db.session import session_scope
from farm.errors import FarmError, InfraError
from farm.fleet import states
from farm.fleet.transports import forget
from farm.inventory import Board, Inventory


class BoardUnavailable(FarmError):
    """This worker's board may not take jobs now (bad, drained, retired): the job goes back to the queue."""

    def __init__(self, board: str, state: str) -> None:
        super().__init__(f"board {board} is {state}")
        self.board, self.state = board, state


class NoHealthyBoard(FarmError):
    """No board of the job's type can take it: failing the job beats leaving it queued forever."""


def claim_board(
    settings: Settings, inventory: Inventory, target: str, job_id: int, received: datetime | None = None
) -> Board:
    """The board this job runs on, moved idle -> running atomically, in the same transaction as the job's
    own move to running (started at ``received``, one more attempt, on that board).

    A worker bound to a board (`farm worker --board`) uses that board or hands the job back; an unbound
    worker (embedded mode) takes the first idle board of the type."""
    if settings.board:
        board = inventory.board(settings.board)
        if _claim(settings, board, job_id, received):
            return board
        raise BoardUnavailable(board.name, states.get_state(settings.db_url, board.name).state)
    candidates = [b for b in inventory.boards_of(target) if b.transport == "local"] or inventory.boards_of(
        target
    )
    for board in candidates:
        if _claim(settings, board, job_id, received):
            return board
    usable = [b.name for b in candidates if states.get_state(settings.db_url, b.name).state in states.USABLE]
    if not usable:
        raise NoHealthyBoard(f"no healthy board of type {target!r}: {_states_of(settings, candidates)}")
    raise InfraError(f"every board of type {target!r} is busy")


def _claim(settings: Settings, board: Board, job_id: int, received: datetime | None) -> bool:
    with session_scope(settings.db_url) as s:
        if not states.set_state(
            settings.db_url,
            board.name,
            "running",
            f"job {job_id}",
            only_from=("idle",),
            job_id=job_id,
            session=s,
        ):
            return False
        row = s.get(JobRow, job_id)
        assert row is not None
        row.state, row.started_at, row.board_name = "running", received or utcnow(), board.name
        row.attempts += 1
        return True


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
