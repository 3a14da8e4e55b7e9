"""A series: one configuration over time, and the points of one metric along it.

The key is the runs' comparability fingerprint (model, precision, board type, batch size, scenario, input
shape: :func:`farm.services.results.fingerprint`) and their source (measured and emulated never share a
series), optionally one board. What is expected to change along a series (toolchain, runtime, artifact,
bitstream, farm version, labels) is not in the key: it is what an alert reports as the difference.

A point is usable as a baseline only when its run is valid, not flagged (noisy host, unstable) and not a
confirmation run; the others are kept and counted, never fed to detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from farm.db.models import BaselineRow, MetricRow, RunRow, SweepRow

#: Run flags that keep a run out of every baseline (farm.services.stability's prefixes).
UNUSABLE_FLAGS = ("noisy-host:", "unstable:")
CONFIRMATION = "confirmation"


@dataclass(frozen=True)
class Series:
    fingerprint: str
    source: str
    model: str
    precision: str
    batch_size: int
    scenario: str
    target: str
    board: str | None = None

    @property
    def key(self) -> str:
        """Readable and glob-able (silences match it): ``resnet50/int8/b1/SingleStream/zcu104/emulated``."""
        base = f"{self.model}/{self.precision}/b{self.batch_size}/{self.scenario}/{self.target}/{self.source}"
        return f"{base}@{self.board}" if self.board else base

    def without_board(self) -> Series:
        return Series(**{**self.__dict__, "board": None})


def series_of(run: RunRow, *, per_board: bool = False) -> Series:
    return Series(
        fingerprint=run.fingerprint,
        source=run.source,
        model=run.model,
        precision=run.precision,
        batch_size=run.batch_size,
        scenario=run.scenario,
        target=run.target,
        board=run.board_name if per_board else None,
    )


@dataclass
class Point:
    run_id: int
    at: datetime
    value: float
    board: str
    sweep_id: str
    valid: bool | None
    flags: list[str] = field(default_factory=list)

    @property
    def unusable(self) -> str | None:
        """Why this run is no baseline (None when it is one)."""
        if self.valid is False:
            return "LoadGen INVALID"
        for flag in self.flags:
            if str(flag).startswith(UNUSABLE_FLAGS):
                return str(flag).split(":")[0]
        return None


def baseline_since(s: Session, series: Series, metric: str) -> int | None:
    """The run from which a rebaselined series counts (None: from its start)."""
    return s.scalar(
        select(func.max(BaselineRow.since_run_id)).where(
            BaselineRow.fingerprint == series.fingerprint,
            BaselineRow.source == series.source,
            BaselineRow.metric == metric,
        )
    )


def points(
    s: Session,
    series: Series,
    metric: str,
    *,
    before_run_id: int | None = None,
    from_run_id: int | None = None,
    rebaselined: bool = True,
    limit: int | None = None,
) -> list[Point]:
    """The series' points of ``metric`` in run order (oldest first), confirmation runs left out. ``limit``
    keeps the newest. ``rebaselined`` starts at the last `farm alerts rebaseline` of the series."""
    query = (
        select(RunRow, MetricRow.value)
        .join(MetricRow, and_(MetricRow.run_id == RunRow.id, MetricRow.name == metric))
        .join(SweepRow, SweepRow.id == RunRow.sweep_id)
        .where(
            RunRow.fingerprint == series.fingerprint,
            RunRow.source == series.source,
            SweepRow.purpose != CONFIRMATION,
        )
    )
    if series.board:
        query = query.where(RunRow.board_name == series.board)
    since = baseline_since(s, series, metric) if rebaselined else None
    start = max(x for x in (since, from_run_id) if x is not None) if (since or from_run_id) else None
    if start is not None:
        query = query.where(RunRow.id >= start)
    if before_run_id is not None:
        query = query.where(RunRow.id < before_run_id)
    query = query.order_by(RunRow.id.desc())
    if limit is not None:
        query = query.limit(limit)
    rows = [
        Point(
            run_id=run.id,
            at=run.created_at,
            value=float(value),
            board=run.board_name,
            sweep_id=run.sweep_id,
            valid=run.result_valid,
            flags=list(run.flags or []),
        )
        for run, value in s.execute(query)
    ]
    rows.reverse()
    return rows


def all_series(s: Session, *, sweep_id: str | None = None, per_board: bool = False) -> list[Series]:
    """Every series with a run (of one sweep), confirmation runs left out."""
    cols = [
        RunRow.fingerprint,
        RunRow.source,
        RunRow.model,
        RunRow.precision,
        RunRow.batch_size,
        RunRow.scenario,
        RunRow.target,
    ]
    if per_board:
        cols.append(RunRow.board_name)
    query = (
        select(*cols).join(SweepRow, SweepRow.id == RunRow.sweep_id).where(SweepRow.purpose != CONFIRMATION)
    )
    if sweep_id is not None:
        query = query.where(RunRow.sweep_id == sweep_id)
    out = []
    for row in s.execute(query.distinct()):
        values = list(row)
        board = values.pop() if per_board else None
        out.append(Series(*values, board=board))
    return sorted(out, key=lambda x: x.key)
