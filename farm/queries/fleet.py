"""Read side: boards, their states and health history (`farm fleet`, the dashboard's Fleet page)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.db.models import (
    BoardEventRow,
    BoardRow,
    JobRow,
)
from farm.fleet.states import STATES
from farm.queries.common import iso

if TYPE_CHECKING:
    from farm.inventory import Inventory

#: Not a board state: a board the database knows but the inventory (the lab file, FARM_LAB) does not list
#: any more, e.g. a virtual-lab board after `farm lab down`. `farm fleet list` does not show it at all.
OFFLINE = "offline"
#: Not a board state either: the inventory cannot be read, so nobody knows which boards are there.
UNKNOWN = "unknown"
#: The reason of an inventory board the database has not recorded yet.
NEW = "new in the inventory (recorded at the next farm fleet list or worker start)"


def fleet_counts(s: Session) -> dict[str, int]:
    counts = dict(s.execute(select(BoardRow.state, func.count()).group_by(BoardRow.state)).all())
    return {state: counts.get(state, 0) for state in STATES}


def fleet_boards(s: Session) -> list[dict[str, Any]]:
    """Every board with its state, why, its current job and its last health check."""
    query = (
        select(BoardRow, JobRow.key, JobRow.sweep_id)
        .outerjoin(JobRow, JobRow.id == BoardRow.current_job_id)
        .order_by(BoardRow.board_type, BoardRow.name)
    )
    out = []
    for b, job_key, job_sweep in s.execute(query):
        out.append(
            {
                "board": b.name,
                "type": b.board_type,
                "family": b.family,
                "state": b.state,
                "reason": b.state_reason,
                "since": iso(b.state_changed_at),
                "current_job": job_key,
                "current_sweep": job_sweep,
                "worker": b.worker,
                "last_health_at": iso(b.last_health_at),
                "last_health_ok": b.last_health_ok,
            }
        )
    return out


def fleet_list(s: Session, inventory: Inventory | None) -> list[dict[str, Any]]:
    """The boards `farm fleet list` shows, with the states it shows: every board of the inventory (its lab
    file, FARM_LAB) in inventory order, its state from the database (a board the database has not met yet
    is idle, as `farm fleet list` would record it). Then the database's other boards, which that command
    leaves out: a virtual-lab board after `farm lab down`, a board taken out of the lab file. They are
    "offline" here, never idle (a retired board stays retired). Without an inventory (its file cannot be
    read: `farm fleet list` fails too) every board's state is "unknown" but retired."""
    query = (
        select(BoardRow, JobRow.key, JobRow.sweep_id)
        .outerjoin(JobRow, JobRow.id == BoardRow.current_job_id)
        .order_by(BoardRow.board_type, BoardRow.name)
    )
    db = {b.name: (b, key, sweep) for b, key, sweep in s.execute(query)}
    out: list[dict[str, Any]] = []

    def row(name: str, board_type: str, family: str | None, where: str | None, state: str | None,
            reason: str | None) -> dict[str, Any]:  # fmt: skip
        b, key, sweep = db.get(name, (None, None, None))
        ok = None if b is None else b.last_health_ok
        return {
            "board": name,
            "type": board_type,
            "family": family,
            "where": where,
            "state": state or (b.state if b is not None else "idle"),
            "reason": reason if reason is not None or b is None else b.state_reason,
            "since": iso(b.state_changed_at) if b is not None else None,
            "current_job": key,
            "current_sweep": sweep,
            "worker": b.worker if b is not None else None,
            "health": None if ok is None else ("ok" if ok else "FAILED"),
            "last_health_at": iso(b.last_health_at) if b is not None else None,
        }

    listed = set()
    if inventory is not None:
        for board in inventory.boards:
            listed.add(board.name)
            bt = inventory.board_types.get(board.type)
            where = "local" if board.transport == "local" else board.transport
            if board.ssh is not None:
                where = f"{board.ssh.host}:{board.ssh.port}"
            new = None if board.name in db else NEW
            out.append(row(board.name, board.type, bt.family if bt else None, where, None, new))
    for name, (b, _key, _sweep) in db.items():
        if name in listed:
            continue
        if b.state == "retired":
            state, reason = None, None
        elif inventory is None:
            state, reason = UNKNOWN, f"the inventory cannot be read (last recorded: {b.state})"
        else:
            state = OFFLINE
            reason = (
                f"not in the inventory's lab file: lab down, or removed from it (last recorded: {b.state})"
            )
        out.append(row(name, b.board_type, b.family, None, state, reason))
    return out


def list_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Boards per state of fleet_list's rows: every board state, then offline / unknown where any is."""
    counts = {state: 0 for state in STATES}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return counts


def health_summary(s: Session, days: float = 7.0, now: datetime | None = None) -> list[dict[str, Any]]:
    """Health checks per board over the last `days`: passed and failed counts."""
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    query = (
        select(BoardEventRow.board_name, BoardEventRow.ok, func.count())
        .where(BoardEventRow.kind == "health", BoardEventRow.at >= since)
        .group_by(BoardEventRow.board_name, BoardEventRow.ok)
    )
    per: dict[str, dict[str, int]] = {}
    for board, ok, n in s.execute(query):
        per.setdefault(board, {"passed": 0, "failed": 0})["passed" if ok else "failed"] += n
    return [{"board": b, **c} for b, c in sorted(per.items())]


def board_events(s: Session, board: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """State changes and health checks, newest first; of one board, or of the whole fleet."""
    query = select(BoardEventRow).order_by(BoardEventRow.at.desc()).limit(limit)
    if board:
        query = query.where(BoardEventRow.board_name == board)
    return [
        {
            "at": iso(e.at),
            "board": e.board_name,
            "kind": e.kind,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "ok": e.ok,
            "reason": e.reason,
        }
        for e in s.scalars(query)
    ]
