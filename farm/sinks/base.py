"""What a result sink is given and must do."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from sqlalchemy import select

from farm.db.models import RunRow, SweepRow
from farm.db.session import session_scope
from farm.queues import Publish


@dataclass(frozen=True)
class StoredRun:
    """A committed run, as sinks see it: identity, its comparability group and its metrics."""

    db_url: str
    run_id: int
    job_id: int | None
    sweep_id: str
    model: str
    precision: str
    target: str
    board: str | None
    batch_size: int
    scenario: str
    source: str  # measured | emulated
    fingerprint: str
    result_valid: bool | None
    flags: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # the sweep's version labels (docs/schedules.md)


class ResultSink(ABC):
    """Runs after a result is committed (never inside its transaction)."""

    name: str = "?"

    @abstractmethod
    def stored(self, run: StoredRun) -> list[Publish]:
        """React to a stored run; return any follow-up jobs to publish (usually none)."""


def load_stored_run(db_url: str, run_id: int) -> StoredRun | None:
    with session_scope(db_url) as s:
        row = s.get(RunRow, run_id)
        if row is None:
            return None
        return StoredRun(
            db_url=db_url,
            run_id=row.id,
            job_id=row.job_id,
            sweep_id=row.sweep_id,
            model=row.model,
            precision=row.precision,
            target=row.target,
            board=row.board_name,
            batch_size=row.batch_size,
            scenario=row.scenario,
            source=row.source,
            fingerprint=row.fingerprint,
            result_valid=row.result_valid,
            flags=tuple(row.flags or ()),
            metrics={m.name: m.value for m in row.metrics},
            labels=dict(s.scalar(select(SweepRow.labels).where(SweepRow.id == row.sweep_id)) or {}),
        )
