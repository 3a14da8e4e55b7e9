"""Finding candidates: the per-run check when a run is stored, the change-point scan over whole series,
automatic resolution, and the backtest (what would have fired, per series and week).

Both detectors read the same usable points (:func:`farm.alerts.series.points`) and the catalog's minimum
change per metric, so a change too small to matter never becomes a candidate however significant.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm import metrics
from farm.alerts.lifecycle import ACTIVE, Candidate
from farm.alerts.series import Point, Series, all_series, every_series_points, fill, points, recent, series_of
from farm.db.models import AlertRow, MetricRow, RunRow
from farm.regressions import check, detect, mann_whitney_p

#: The recent points the per-run check compares a new run with.
CHECK_HISTORY = 30
#: Fewest usable points before the per-run check says anything (fewer: the scan decides later).
MIN_HISTORY = 10  # as farm.regressions.check wants: a robust spread needs about ten points
#: Points after a change that show the series back at its old level before an alert resolves itself.
RESOLVE_POINTS = 3
RECOVERED = 0.9  # share of the change undone that resolves an alert whatever is left
RESOLVE_ALPHA = 0.05


def _thresholds(metric: str) -> dict[str, float]:
    m = metrics.get(metric)
    return {"min_change_pct": m.min_change_pct, "min_change_abs": m.min_change_abs}


def _higher(metric: str) -> bool:
    return metrics.better(metric) == "higher"


def usable(pts: list[Point]) -> tuple[list[Point], Counter]:
    """The points that can be a baseline, and how many of the others were left out for which reason (each
    point's reason computed once: a scan asks it of millions)."""
    kept: list[Point] = []
    skipped: Counter = Counter()
    for p in pts:
        why = p.unusable
        if why:
            skipped[why] += 1
        else:
            kept.append(p)
    return kept, skipped


def check_run(s: Session, run_id: int) -> list[Candidate]:
    """The per-run check: each watched metric of a just-stored run against its series' recent usable
    points. A run that is itself no baseline (noisy, unstable, INVALID) is no suspect either: INVALID has
    its own check (:func:`invalid_run`)."""
    run = s.get(RunRow, run_id)
    if run is None:
        return []
    series = series_of(run)
    here = {m.name: m.value for m in run.metrics}
    probe = Point(
        run.id, run.created_at, 0.0, run.board_name, run.sweep_id, run.result_valid, run.flags or []
    )
    if probe.unusable:
        return []
    names = [m.name for m in metrics.watched() if m.name in here]
    if not names:
        return []
    histories = recent(s, series, names, before_run_id=run.id, limit=CHECK_HISTORY)
    out = []
    for metric in (metrics.get(n) for n in names):
        history, skipped = usable(histories[metric.name])
        if len(history) < MIN_HISTORY:
            continue
        result = check(
            [p.value for p in history], here[metric.name], _higher(metric.name), **_thresholds(metric.name)
        )
        if not result.suspect:
            continue
        out.append(
            Candidate(
                series=series,
                metric=metric.name,
                kind="regression",
                detector="check",
                change_run_id=run.id,
                board=run.board_name,
                sweep_id=run.sweep_id,
                before=float(result.baseline),
                after=float(here[metric.name]),
                change_pct=float(result.change_pct),
                p_value=float(result.p_value),
                run_ids=[run.id],
                baseline_run_ids=[p.run_id for p in history],
                details={"reason": result.reason, "score": float(result.score), "skipped": dict(skipped)},
            )
        )
    return out


def invalid_run(s: Session, run_id: int) -> Candidate | None:
    """A LoadGen result that turns INVALID on a series whose last results were VALID."""
    run = s.get(RunRow, run_id)
    if run is None or run.result_valid is not False:
        return None
    series = series_of(run)
    headline = _headline_metric(run)
    before = points(s, series, headline, before_run_id=run.id, limit=5)
    if not before or before[-1].valid is not True:
        return None
    return Candidate(
        series=series,
        metric=headline,
        kind="invalid",
        detector="invalid",
        change_run_id=run.id,
        board=run.board_name,
        sweep_id=run.sweep_id,
        before=None,
        after=None,
        change_pct=None,
        p_value=None,
        run_ids=[run.id],
        baseline_run_ids=[p.run_id for p in before],
        details={"reason": f"LoadGen result INVALID after {len(before)} VALID runs"},
    )


def _headline_metric(run: RunRow) -> str:
    """The metric an INVALID alert is filed under: the scenario's headline (the contract's rule; the
    default MultiStream percentile), else the first watched metric the run stored."""
    names = {m.name for m in run.metrics}
    headline = metrics.headline(run.scenario)
    if headline in names:
        return headline
    return next((m.name for m in metrics.watched() if m.name in names), headline)


@dataclass
class SeriesScan:
    """What the scan saw on one series and metric."""

    series: Series
    metric: str
    points: int
    skipped: dict[str, int]
    candidate: Candidate | None
    change_points: list[Any]


def scan_series(s: Session, series: Series, metric: str) -> SeriesScan:
    """Change points over one series' usable points (see :func:`scan_points`)."""
    return scan_points(series, metric, points(s, series, metric))


def scan_points(series: Series, metric: str, all_points: list[Point], s: Session | None = None) -> SeriesScan:
    """The latest change point, when it is a regression, is a candidate (an older regression followed by a
    recovery is history: the backtest shows it)."""
    pts, skipped = usable(all_points)
    found = detect([p.value for p in pts], _higher(metric), **_thresholds(metric)) if len(pts) >= 2 else []
    candidate = None
    if found and found[-1].regression:
        cp = found[-1]
        start = found[-2].index if len(found) > 1 else 0
        after, before = pts[cp.index :], pts[start : cp.index]
        first = pts[cp.index]
        if s is not None:
            fill(s, [first])
        candidate = Candidate(
            series=series,
            metric=metric,
            kind="regression",
            detector="scan",
            change_run_id=first.run_id,
            board=first.board,
            sweep_id=first.sweep_id,
            before=float(cp.before),
            after=float(cp.after),
            change_pct=float(cp.change_pct),
            p_value=float(cp.p_value),
            run_ids=[p.run_id for p in after],
            baseline_run_ids=[p.run_id for p in before],
            details={
                "before_ci": list(cp.before_ci or ()),
                "after_ci": list(cp.after_ci or ()),
                "skipped": dict(skipped),
                "points": len(pts),
            },
        )
    return SeriesScan(series, metric, len(pts), dict(skipped), candidate, found)


def scan(s: Session, *, sweep_id: str | None = None) -> list[SeriesScan]:
    """Every watched metric of every series (those a sweep touched, with ``sweep_id``): one read of the
    store per metric, then detection per series."""
    known = {(x.fingerprint, x.source): x for x in all_series(s, sweep_id=sweep_id)}
    fingerprints = {fp for fp, _ in known} if sweep_id is not None else None
    out = []
    for metric in metrics.watched():
        for key, pts in every_series_points(s, metric.name, fingerprints=fingerprints).items():
            if key in known:
                out.append(scan_points(known[key], metric.name, pts, s))
    return out


def back_to_normal(s: Session, alert: AlertRow) -> str | None:
    """Why an active alert's series is back at its old level (None while it is not), from the median of
    its last usable points after the change: no longer a regression by the metric's minimum change; or
    90 % of the change undone (what is left is the room's noise, e.g. a board still warm); or half of it
    undone and those points not worse than the baseline runs by a rank test (a noisy metric such as
    energy, whose three points cannot show a level to within its minimum change)."""
    if alert.kind != "regression" or alert.before is None or alert.state not in ACTIVE:
        return None
    series = series_of(alert)
    later, _ = usable(points(s, series, alert.metric, from_run_id=alert.change_run_id + 1, rebaselined=False))
    recent = [p.value for p in later[-RESOLVE_POINTS:]]
    if len(recent) < RESOLVE_POINTS:
        return None
    level = sorted(recent)[len(recent) // 2]
    said = f"back to {level:.4g} over the last {len(recent)} runs (was {alert.before:.4g} before the change)"
    if not metrics.worse_beyond_min_change(alert.metric, alert.before, level):
        return said
    moved = (alert.after or alert.before) - alert.before
    undone = (alert.after - level) / moved if moved and alert.after is not None else 0.0
    if undone >= RECOVERED:
        return f"{said}: {undone:.0%} of the change undone"
    baseline = list(
        s.scalars(
            select(MetricRow.value).where(
                MetricRow.run_id.in_(alert.baseline_run_ids or []), MetricRow.name == alert.metric
            )
        )
    )
    if undone >= 0.5 and len(baseline) >= RESOLVE_POINTS:
        p = mann_whitney_p(recent, baseline, _higher(alert.metric))
        if p > RESOLVE_ALPHA:
            return f"{said}: not worse than the {len(baseline)} baseline runs (rank test p={p:.2g})"
    return None


def backtest(s: Session) -> list[dict[str, Any]]:
    """Replay stored history: every regression change point per series and metric, with the ISO week of
    the run it starts at (what alerts would have fired, and when)."""
    out = []
    for series in all_series(s):
        for metric in metrics.watched():
            pts, _ = usable(points(s, series, metric.name, rebaselined=False))
            if len(pts) < 2:
                continue
            for cp in detect([p.value for p in pts], _higher(metric.name), **_thresholds(metric.name)):
                if not cp.regression:
                    continue
                first = pts[cp.index]
                year, week, _ = _week(first.at)
                out.append(
                    {
                        "series": series.key,
                        "metric": metric.name,
                        "week": f"{year}-W{week:02d}",
                        "run_id": first.run_id,
                        "at": first.at.isoformat(),
                        "before": cp.before,
                        "after": cp.after,
                        "change_pct": cp.change_pct,
                        "p_value": cp.p_value,
                    }
                )
    return out


def _week(at: datetime) -> tuple[int, int, int]:
    return tuple(at.isocalendar())  # type: ignore[return-value]
