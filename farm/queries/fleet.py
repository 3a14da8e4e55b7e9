"""Read side: boards, their states and health history (`farm fleet`, the dashboard's Fleet page)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.db.models import (
    BoardEventRow,
    BoardRow,
    JobRow,
)
from farm.fleet.states import STATES
from farm.queries.common import iso


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
