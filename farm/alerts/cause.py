"""Hardware-aware cause: what else moved with a confirmed change.

- Where: the same change on every board of the type that ran the series since (software), or on one board
  only (the board or its infrastructure: suggest ``farm fleet check`` / drain).
- Thermal: latency up with the accelerator clock down or the temperature up (throttling, a clock change).
- What changed: the provenance fields (and sweep labels) whose usual value differs between the baseline
  runs and the runs at the new level.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm import metrics
from farm.alerts.series import points, series_of
from farm.db.models import AlertRow, MetricRow, ProvenanceRow, RunRow, SweepRow

#: Provenance fields an alert reports when they differ before and after (what a series may change along).
PROVENANCE_FIELDS = (
    "toolchain",
    "toolchain_version",
    "runtime",
    "runtime_version",
    "artifact_sha256",
    "dpu_fingerprint",
    "farm_version",
    "farm_git_sha",
    "loadgen_version",
    "accelerator_clock_mhz",
    "ambient_c",
    "cpu_model",
)
#: ... and from the agent's environment record (INT8 figures depend on the host's ISA: VNNI or not).
ENVIRONMENT_FIELDS = ("cpu_isa",)


def _usual(values: list[Any]) -> Any:
    found = [v for v in values if v is not None]
    return Counter(map(_hashable, found)).most_common(1)[0][0] if found else None


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted(v.items()))
    return tuple(v) if isinstance(v, list) else v


def provenance_diff(s: Session, before_runs: list[int], after_runs: list[int]) -> dict[str, dict[str, Any]]:
    """field -> {"before": usual value, "after": usual value}, for fields that differ."""

    def usual(run_ids: list[int]) -> dict[str, Any]:
        rows = list(s.scalars(select(ProvenanceRow).where(ProvenanceRow.run_id.in_(run_ids))))
        out = {f: _usual([getattr(r, f) for r in rows]) for f in PROVENANCE_FIELDS}
        for f in ENVIRONMENT_FIELDS:
            value = _usual([(r.environment or {}).get(f) for r in rows])
            out[f] = " ".join(value) if isinstance(value, tuple) else value
        labels = s.execute(
            select(SweepRow).join(RunRow, RunRow.sweep_id == SweepRow.id).where(RunRow.id.in_(run_ids))
        ).scalars()
        for key, value in _usual([dict(sw.labels or {}) for sw in labels] or [None]) or ():
            out[f"label:{key}"] = value
        return out

    b, a = usual(before_runs), usual(after_runs)
    return {
        k: {"before": b.get(k), "after": a.get(k)} for k in sorted(set(b) | set(a)) if b.get(k) != a.get(k)
    }


def _metric(s: Session, run_ids: list[int], name: str) -> float | None:
    values = sorted(
        s.scalars(select(MetricRow.value).where(MetricRow.run_id.in_(run_ids), MetricRow.name == name))
    )
    return values[len(values) // 2] if values else None


def _where(s: Session, alert: AlertRow) -> dict[str, Any]:
    """Per board of the type: the metric's level before the change and since it."""
    series = series_of(alert)
    boards = sorted(set(s.scalars(select(RunRow.board_name).where(RunRow.fingerprint == alert.fingerprint))))
    moved, steady = [], []
    for board in boards:
        on = series.on_board(board)
        before = [
            p.value for p in points(s, on, alert.metric, before_run_id=alert.change_run_id) if not p.unusable
        ]
        after = [
            p.value for p in points(s, on, alert.metric, from_run_id=alert.change_run_id) if not p.unusable
        ]
        if len(before) < 2 or not after:
            continue
        b, a = sorted(before)[len(before) // 2], sorted(after)[len(after) // 2]
        (moved if metrics.worse_beyond_min_change(alert.metric, b, a) else steady).append(board)
    if moved and not steady:
        verdict = (
            f"on every board of type {alert.target} that ran it ({', '.join(moved)}): likely software"
            if len(moved) > 1
            else f"on {moved[0]}, the only board of type {alert.target} with runs before and after"
        )
    elif moved:
        verdict = (
            f"on {', '.join(moved)} only, not on {', '.join(steady)}: the board or its infrastructure "
            f"(try `farm fleet check {moved[0]}`, or drain it)"
        )
    else:
        verdict = "no board alone shows it (too few runs per board)"
    return {"moved": moved, "steady": steady, "verdict": verdict}


def explain(s: Session, alert: AlertRow) -> dict[str, Any]:
    """The alert's cause record: where, thermal, and the provenance diff, with one line to read."""
    before, after = list(alert.baseline_run_ids or []), list(alert.run_ids or [])
    where = _where(s, alert)
    thermal = {}
    for name in ("clock_mhz_min", "temp_c_max"):
        b, a = _metric(s, before, name), _metric(s, after, name)
        if b is not None and a is not None and b != a:
            thermal[name] = {"before": b, "after": a}
    diff = provenance_diff(s, before, after)
    notes = [where["verdict"]]
    clock = thermal.get("clock_mhz_min") or diff.get("accelerator_clock_mhz")
    if clock and clock["before"] and clock["after"] and clock["after"] < clock["before"] * 0.98:
        notes.append(
            f"clock {clock['before']:.0f} -> {clock['after']:.0f} MHz (throttling or a clock change)"
        )
    temp = thermal.get("temp_c_max")
    if temp and temp["after"] - temp["before"] >= 3:
        notes.append(f"temperature {temp['before']:.1f} -> {temp['after']:.1f} C")
    software = [k for k in diff if k not in ("accelerator_clock_mhz", "ambient_c")]
    if software:
        notes.append(
            "changed: " + ", ".join(f"{k} {diff[k]['before']} -> {diff[k]['after']}" for k in software)
        )
    return {"where": where, "thermal": thermal, "provenance": diff, "summary": "; ".join(notes)}
