"""Board states, stored in the database with their history.

idle -> running -> idle        a worker takes and finishes a job
any but retired -> bad         a health check or a job's infrastructure failed
idle|bad -> maintenance        `farm fleet drain` (a running board finishes its job first)
bad|maintenance -> idle        `farm fleet enable`, or a passing health check for `bad`
any -> retired                 `farm fleet retire`: never used again

Every change is a "state" event in the board's history, every health check a "health" event, and every
decision not to move a board that a check alone would have moved (farm/fleet/policy.py) a "decision" event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm.db.models import BoardEventRow, BoardRow, utcnow
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.inventory import Inventory

STATES = ("idle", "running", "bad", "maintenance", "retired")
USABLE = ("idle", "running")


@dataclass(frozen=True)
class BoardState:
    name: str
    board_type: str
    state: str
    reason: str | None
    current_job_id: int | None
    worker: str | None
    last_health_ok: bool | None
    changed_at: datetime | None = None


def sync_boards(s: Session, inventory: Inventory) -> None:
    """Every inventory board gets a row (new boards start idle).

    Insert-if-absent: processes that meet a new database (or a new board) at once each try to add it, and
    the ones that lose the race add nothing, not an IntegrityError. Only the winner records the event."""
    known = set(s.scalars(select(BoardRow.name)))
    new = [b for b in inventory.boards if b.name not in known]
    added = []
    for board in new:
        values = {
            "name": board.name,
            "board_type": board.type,
            "family": inventory.board_types[board.type].family,
            "state": "idle",
            "state_changed_at": utcnow(),
        }
        if _insert_if_absent(s, values):
            added.append(board)
    for board in added:  # boards before their events (no ORM relationship orders them)
        s.add(
            BoardEventRow(
                board_name=board.name, kind="state", to_state="idle", reason="added from the inventory"
            )
        )
    s.flush()


def _insert_if_absent(s: Session, values: dict[str, Any]) -> bool:
    """Whether this session added the board row (False: another process already had)."""
    dialect = s.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        stmt = insert(BoardRow).values(**values).on_conflict_do_nothing(index_elements=["name"])
        # RETURNING, not rowcount: an ORM-entity insert reports rowcount -1 on psycopg
        return s.execute(stmt.returning(BoardRow.name)).scalar_one_or_none() is not None
    try:
        with s.begin_nested():
            s.execute(sa_insert(BoardRow).values(**values))
    except IntegrityError:
        return False
    return True


def get_state(db_url: str, name: str) -> BoardState:
    with session_scope(db_url) as s:
        row = s.get(BoardRow, name)
        if row is None:
            raise FarmError(
                f"board {name!r} is not in the database: run `farm fleet list` to sync the inventory"
            )
        return BoardState(
            row.name,
            row.board_type,
            row.state,
            row.state_reason,
            row.current_job_id,
            row.worker,
            row.last_health_ok,
            row.state_changed_at,
        )


def set_state(
    db_url: str,
    name: str,
    to: str,
    reason: str,
    *,
    only_from: tuple[str, ...] | None = None,
    job_id: int | None = None,
    session: Session | None = None,
    only_job: int | None = None,
) -> bool:
    """Move a board to `to` (recording why), if it is in one of `only_from` (and, with ``only_job``, still
    claimed for that job: a board freed for a job that ended is never taken from the next one). Returns
    whether it moved. The move is one conditional UPDATE, so two workers or a worker and the CLI cannot
    both win. With ``session`` it joins that transaction (a claim and the job's own bookkeeping commit
    together)."""
    if to not in STATES:
        raise ValueError(f"unknown board state {to!r}")
    if session is not None:
        return _set_state(session, name, to, reason, only_from, job_id, only_job)
    with session_scope(db_url) as s:
        return _set_state(s, name, to, reason, only_from, job_id, only_job)


def _set_state(
    s: Session,
    name: str,
    to: str,
    reason: str,
    only_from: tuple[str, ...] | None,
    job_id: int | None,
    only_job: int | None = None,
) -> bool:
    row = s.get(BoardRow, name)
    if row is None:
        raise FarmError(f"no board named {name!r}")
    before = row.state
    cond = [BoardRow.name == name]
    if only_from is not None:
        cond.append(BoardRow.state.in_(only_from))
    if only_job is not None:
        cond.append(BoardRow.current_job_id == only_job)
    values: dict[str, Any] = {"state": to, "state_reason": reason, "state_changed_at": utcnow()}
    values["current_job_id"] = job_id if to == "running" else None
    moved = s.execute(update(BoardRow).where(*cond).values(**values)).rowcount == 1
    if moved and before != to:
        s.add(BoardEventRow(board_name=name, kind="state", from_state=before, to_state=to, reason=reason))
    return moved


def record_health(db_url: str, name: str, ok: bool, reason: str, details: dict[str, Any]) -> None:
    with session_scope(db_url) as s:
        row = s.get(BoardRow, name)
        if row is None:
            return
        row.last_health_at, row.last_health_ok = utcnow(), ok
        s.add(BoardEventRow(board_name=name, kind="health", ok=ok, reason=reason, details=details))


@dataclass(frozen=True)
class HealthStreak:
    """The end of a board's health history: how many checks in a row failed (up to the limit asked for),
    and when its last failure was (a failed check, or its move to bad), if within the window asked for."""

    failures_in_a_row: int
    last_failure_at: datetime | None


def health_streak(db_url: str, name: str, count: int, window_s: float) -> HealthStreak:
    """Read with two small indexed queries (board, time): the history itself grows for ever."""
    with session_scope(db_url) as s:
        recent = s.scalars(
            select(BoardEventRow.ok)
            .where(BoardEventRow.board_name == name, BoardEventRow.kind == "health")
            .order_by(BoardEventRow.at.desc(), BoardEventRow.id.desc())
            .limit(max(count, 1))
        )
        in_a_row = 0
        for ok in recent:
            if ok:
                break
            in_a_row += 1
        since = utcnow() - timedelta(seconds=window_s)
        last_check = s.scalar(
            select(func.max(BoardEventRow.at)).where(
                BoardEventRow.board_name == name,
                BoardEventRow.at >= since,
                BoardEventRow.ok.is_(False),
                BoardEventRow.kind == "health",
            )
        )
        row = s.get(BoardRow, name)
        went_bad = row.state_changed_at if row is not None and row.state == "bad" else None
        moments = [_aware(t) for t in (last_check, went_bad) if t is not None]
        return HealthStreak(in_a_row, max(moments) if moments else None)


def _aware(ts: datetime) -> datetime:
    """SQLite hands back UTC without its zone."""
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def set_reason(db_url: str, name: str, reason: str, *, only_in: tuple[str, ...]) -> bool:
    """Say why a board is in its state now (a bad board's newest fault), keeping its state and the time it
    entered it. Recorded in the history only by the event that carried the news (a health check)."""
    with session_scope(db_url) as s:
        changed = s.execute(
            update(BoardRow)
            .where(BoardRow.name == name, BoardRow.state.in_(only_in))
            .values(state_reason=reason)
        )
        return changed.rowcount == 1


def record_decision(db_url: str, name: str, reason: str, details: dict[str, Any] | None = None) -> None:
    """A decision not to move a board that a check alone would have moved (held bad in its cooldown, kept
    idle below the flap threshold): kind "decision" in its history, with the why."""
    with session_scope(db_url) as s:
        if s.get(BoardRow, name) is not None:
            s.add(BoardEventRow(board_name=name, kind="decision", reason=reason, details=details))


def set_worker(db_url: str, name: str, worker: str | None) -> None:
    with session_scope(db_url) as s:
        row = s.get(BoardRow, name)
        if row is not None:
            row.worker = worker


def boards_usable(db_url: str, board_type: str, exclude: str | None = None) -> list[str]:
    with session_scope(db_url) as s:
        query = select(BoardRow.name).where(BoardRow.board_type == board_type, BoardRow.state.in_(USABLE))
        return [n for n in s.scalars(query) if n != exclude]
