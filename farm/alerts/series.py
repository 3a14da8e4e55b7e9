"""A series: one configuration over time, and the points of one metric along it.

The key is the runs' comparability fingerprint (model, precision, board type, batch size, scenario, input
shape: :func:`farm.services.results.fingerprint`) and their source (measured and emulated never share a
series), optionally one board. What is expected to change along a series (toolchain, runtime, artifact,
bitstream, farm version, labels) is not in the key: it is what an alert reports as the difference.

A point is usable as a baseline only when its run is valid, not flagged (noisy host, unstable) and not a
confirmation run; the others are kept and counted, never fed to detection.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from farm.db.models import BaselineRow, MetricRow, RunRow, SweepRow

#: Run flags that keep a run out of every baseline (farm.services.stability's prefixes).
#: A run of a lab faster than real time (farm/services/results.py: time_scaled_flags).
TIME_SCALED = "time-scaled:"
UNUSABLE_FLAGS = ("noisy-host:", "unstable:", TIME_SCALED)
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

    def on_board(self, board: str) -> Series:
        """The same configuration on one board only."""
        return Series(**{**self.__dict__, "board": board})


def series_of(row: Any) -> Series:
    """The series of a run or an alert (both carry the key's fields; runs name the board type target)."""
    return Series(
        fingerprint=row.fingerprint,
        source=row.source,
        model=row.model,
        precision=row.precision,
        batch_size=row.batch_size,
        scenario=row.scenario,
        target=row.target,
    )


@dataclass(slots=True)
class Point:
    """One run's value. A bulk read (a scan) leaves ``at``, ``board`` and ``sweep_id`` None: they are read
    for the few runs an alert names (:func:`fill`)."""

    run_id: int
    at: datetime | None
    value: float
    board: str | None
    sweep_id: str | None
    valid: bool | None
    flags: list[str] | None = None

    @property
    def unusable(self) -> str | None:
        """Why this run is no baseline (None when it is one)."""
        if self.valid is False:
            return "LoadGen INVALID"
        for flag in self.flags or ():
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


def all_series(s: Session, *, sweep_id: str | None = None) -> list[Series]:
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
    query = (
        select(*cols).join(SweepRow, SweepRow.id == RunRow.sweep_id).where(SweepRow.purpose != CONFIRMATION)
    )
    if sweep_id is not None:
        query = query.where(RunRow.sweep_id == sweep_id)
    return sorted((Series(*row) for row in s.execute(query.distinct())), key=lambda x: x.key)


def baselines(s: Session, fingerprint: str | None = None) -> dict[tuple[str, str, str], int]:
    """(fingerprint, source, metric) -> the run a rebaselined series counts from."""
    query = select(
        BaselineRow.fingerprint, BaselineRow.source, BaselineRow.metric, func.max(BaselineRow.since_run_id)
    )
    if fingerprint is not None:
        query = query.where(BaselineRow.fingerprint == fingerprint)
    return {
        (fp, src, m): since
        for fp, src, m, since in s.execute(
            query.group_by(BaselineRow.fingerprint, BaselineRow.source, BaselineRow.metric)
        )
    }


def _point(row) -> Point:
    return Point(
        row.id,
        row.created_at,
        float(row.value),
        row.board_name,
        row.sweep_id,
        row.result_valid,
        list(row.flags or []),
    )


def recent(
    s: Session, series: Series, names: list[str], *, before_run_id: int, limit: int
) -> dict[str, list[Point]]:
    """The last ``limit`` points of each metric before a run, oldest first (the per-run check reads every
    watched metric of a run at once): the series' last runs first (an index walk), then their metrics."""
    since = baselines(s, series.fingerprint)
    runs = (
        select(RunRow.id)
        .join(SweepRow, SweepRow.id == RunRow.sweep_id)
        .where(
            RunRow.fingerprint == series.fingerprint,
            RunRow.source == series.source,
            RunRow.id < before_run_id,
            SweepRow.purpose != CONFIRMATION,
        )
        .order_by(RunRow.id.desc())
        .limit(2 * limit)  # room for runs that are no baseline (noisy, INVALID) or lack a metric
    )
    if series.board:
        runs = runs.where(RunRow.board_name == series.board)
    ids = list(s.scalars(runs))
    query = (
        select(
            RunRow.id,
            RunRow.created_at,
            RunRow.board_name,
            RunRow.sweep_id,
            RunRow.result_valid,
            RunRow.flags,
            MetricRow.name,
            MetricRow.value,
        )
        .join(MetricRow, MetricRow.run_id == RunRow.id)
        .where(RunRow.id.in_(ids), MetricRow.name.in_(names))
        .order_by(RunRow.id.desc())
    )
    out: dict[str, list[Point]] = {n: [] for n in names}
    for run_id, at, board, sweep_id, valid, flags, name, value in s.execute(query):
        start = since.get((series.fingerprint, series.source, name))
        if len(out[name]) < limit and (start is None or run_id >= start):
            out[name].append(Point(run_id, at, value, board, sweep_id, valid, flags))
    return {n: pts[::-1] for n, pts in out.items()}


_RUN_ID = operator.attrgetter("run_id")


def every_series_points(
    s: Session, metric: str, *, fingerprints: set[str] | None = None
) -> dict[tuple[str, str], list[Point]]:
    """(fingerprint, source) -> the metric's points, oldest first, rebaselines applied: one query for
    every series (a scan of ten thousand series reads the store once per metric, not once per series),
    with only what detection needs (:func:`fill` adds time, board and sweep where an alert needs them)."""
    since = baselines(s)
    query = (
        select(
            RunRow.fingerprint, RunRow.source, RunRow.id, RunRow.result_valid, RunRow.flags, MetricRow.value
        )
        .join(MetricRow, and_(MetricRow.run_id == RunRow.id, MetricRow.name == metric))
        .join(SweepRow, SweepRow.id == RunRow.sweep_id)
        .where(SweepRow.purpose != CONFIRMATION)
    )
    if fingerprints is not None:
        query = query.where(RunRow.fingerprint.in_(sorted(fingerprints)))
    out: dict[tuple[str, str], list[Point]] = {}
    # Grouped here, not sorted by the database: an ORDER BY on the fingerprint made SQLite sort every row
    # of the metric (most of the scan's time); each series is put in run order below.
    for fp, source, run_id, valid, flags, value in s.connection().execute(query):
        key = (fp, source)
        current = out.get(key)
        if current is None:
            current = out[key] = []
        current.append(Point(run_id, None, value, None, None, valid, flags))
    for (fp, source), pts in out.items():
        pts.sort(key=_RUN_ID)  # linear when the rows came in run order, as they usually do
        start = since.get((fp, source, metric))
        if start is not None:
            pts[:] = [p for p in pts if p.run_id >= start]
    return out


def fill(s: Session, pts: list[Point]) -> None:
    """Read time, board and sweep for points a bulk read left without them."""
    missing = {p.run_id: p for p in pts if p.at is None}
    if not missing:
        return
    query = select(RunRow.id, RunRow.created_at, RunRow.board_name, RunRow.sweep_id).where(
        RunRow.id.in_(list(missing))
    )
    for run_id, at, board, sweep_id in s.execute(query):
        p = missing[run_id]
        p.at, p.board, p.sweep_id = at, board, sweep_id
