"""Which stored results count for a procurement question, read from the results database.

Per board type, precision and source (measured, emulated: never mixed), the newest ``MAX_RUNS`` usable runs
of each scenario of the workload (model, precision, batch size). Usable as for regression alerts
(docs/alerts.md): not LoadGen INVALID, not flagged ``noisy-host:`` / ``unstable:`` (unless asked), not a
confirmation run. What was skipped, and any open regression alert on the series, is said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.alerts.series import UNUSABLE_FLAGS  # one rule for "no baseline" and "does not count"
from farm.db.models import AlertRow, ArtifactRow, MetricRow, ProvenanceRow, RunRow, SweepRow
from farm.procure.workload import Workload

#: How many runs of a series count: enough to see run-to-run variation, recent enough to be today's board.
MAX_RUNS = 10

ACTIVE_ALERT_STATES = ("open", "acknowledged")
NEEDED = (
    "latency_ms_p50",
    "latency_ms_p99",
    "throughput_ips",
    "server_qps_max",
    "server_latency_ms_p99_at_max",
    "power_w",
    "accuracy_top1",
    "int8_fp32_top1_agreement",
)


@dataclass
class RunFigures:
    run_id: int
    created_at: datetime
    scenario: str
    metrics: dict[str, float]
    server_search: dict[str, Any] | None = None
    time_scale: float = 1.0
    artifact_agreement: float | None = None


@dataclass
class Series:
    """One board type, precision and source: its usable runs per scenario, newest first."""

    board_type: str
    precision: str
    source: str
    runs: dict[str, list[RunFigures]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    alerts: list[str] = field(default_factory=list)

    def newest(self) -> datetime | None:
        times = [r.created_at for rs in self.runs.values() for r in rs]
        return max(times) if times else None

    def median(self, scenario: str, name: str) -> float | None:
        values = sorted(r.metrics[name] for r in self.runs.get(scenario, []) if name in r.metrics)
        if not values:
            return None
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    def any_median(self, name: str, order: tuple[str, ...]) -> tuple[float | None, str | None]:
        """The first scenario in ``order`` with the metric: (median, scenario)."""
        for scenario in order:
            value = self.median(scenario, name)
            if value is not None:
                return value, scenario
        return None, None

    def newest_value(self, name: str) -> float | None:
        runs = sorted((r for rs in self.runs.values() for r in rs), key=lambda r: r.created_at, reverse=True)
        for r in runs:
            if name in r.metrics:
                return r.metrics[name]
            if name == "int8_fp32_top1_agreement" and r.artifact_agreement is not None:
                return r.artifact_agreement
        return None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def gather(s: Session, w: Workload, board_types: list[str]) -> dict[tuple[str, str, str], Series]:
    """(board type, precision, source) -> Series, for the board types asked and the scenarios that can
    answer the workload."""
    scenarios = ("Server", "SingleStream", "Offline")
    query = (
        select(RunRow, SweepRow.purpose, ArtifactRow.top1_agreement)
        .join(SweepRow, SweepRow.id == RunRow.sweep_id)
        .join(ArtifactRow, ArtifactRow.key == RunRow.artifact_key)
        .where(
            RunRow.model == w.model,
            RunRow.batch_size == w.batch_size,
            RunRow.precision.in_(w.precisions),
            RunRow.target.in_(board_types),
            RunRow.scenario.in_(scenarios),
        )
        .order_by(RunRow.created_at.desc(), RunRow.id.desc())
    )
    out: dict[tuple[str, str, str], Series] = {}
    chosen: dict[int, RunFigures] = {}
    for run, purpose, agreement in s.execute(query):
        key = (run.target, run.precision, run.source)
        series = out.setdefault(key, Series(*key))
        reason = _unusable(run, purpose, w.include_flagged)
        if reason:
            series.skipped[reason] = series.skipped.get(reason, 0) + 1
            continue
        runs = series.runs.setdefault(run.scenario, [])
        if len(runs) >= MAX_RUNS:
            continue
        fig = RunFigures(
            run.id,
            _aware(run.created_at),
            run.scenario,
            {},
            artifact_agreement=agreement if run.precision == "int8" else None,
        )
        runs.append(fig)
        chosen[run.id] = fig
    ids = list(chosen)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = s.execute(
            select(MetricRow.run_id, MetricRow.name, MetricRow.value).where(
                MetricRow.run_id.in_(chunk), MetricRow.name.in_(NEEDED)
            )
        )
        for run_id, name, value in rows:
            if value is not None and math.isfinite(value):
                chosen[run_id].metrics[name] = float(value)
        server = [i for i in chunk if chosen[i].scenario == "Server"]
        if server:
            for run_id, env in s.execute(
                select(ProvenanceRow.run_id, ProvenanceRow.environment).where(
                    ProvenanceRow.run_id.in_(server)
                )
            ):
                env = env or {}
                chosen[run_id].server_search = env.get("server_search")
                scale = env.get("time_scale")
                chosen[run_id].time_scale = (
                    float(scale) if isinstance(scale, int | float) and 0 < scale <= 1 else 1.0
                )
    _attach_alerts(s, w, board_types, out)
    return out


def _unusable(run: RunRow, purpose: str | None, include_flagged: bool) -> str | None:
    if purpose == "confirmation":
        return "confirmation run"
    if run.result_valid is False:
        return "LoadGen INVALID"
    if not include_flagged:
        for flag in run.flags or ():
            if str(flag).startswith(UNUSABLE_FLAGS):
                return f"flagged {str(flag).split(':')[0]}"
    return None


def _attach_alerts(
    s: Session, w: Workload, board_types: list[str], out: dict[tuple[str, str, str], Series]
) -> None:
    query = select(AlertRow).where(
        AlertRow.model == w.model,
        AlertRow.batch_size == w.batch_size,
        AlertRow.precision.in_(w.precisions),
        AlertRow.target.in_(board_types),
        AlertRow.state.in_(ACTIVE_ALERT_STATES),
    )
    for a in s.scalars(query):
        series = out.get((a.target, a.precision, a.source))
        if series is not None:
            series.alerts.append(f"{a.state} regression alert #{a.id} on {a.series_key} ({a.metric})")
