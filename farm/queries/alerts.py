"""Read side: regression alerts and the change points of a series (`farm alerts`, the dashboard's Alerts
page and the change marks on Trends)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm import metrics
from farm.alerts.delivery import alert_dict, alert_docs
from farm.alerts.detection import usable
from farm.alerts.series import points, series_of
from farm.db.models import AlertDeliveryRow, AlertEventRow, AlertRow, RunRow
from farm.regressions import detect


def alerts(s: Session, *, state: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
    if state:
        query = query.where(AlertRow.state == state)
    return alert_docs(s, list(s.scalars(query)))


def alert_detail(s: Session, alert_id: int) -> dict[str, Any] | None:
    a = s.get(AlertRow, alert_id)
    if a is None:
        return None
    (doc,) = alert_docs(s, [a])
    doc["details"] = a.details or {}
    doc["cause_detail"] = a.cause or {}
    doc["history"] = [
        {"at": e.at.isoformat(), "from": e.from_state, "to": e.to_state, "note": e.note}
        for e in s.scalars(
            select(AlertEventRow).where(AlertEventRow.alert_id == a.id).order_by(AlertEventRow.id)
        )
    ]
    doc["deliveries"] = [
        {
            "channel": d.channel,
            "state": d.state,
            "attempts": d.attempts,
            "receipt": d.receipt,
            "error": d.last_error,
        }
        for d in s.scalars(select(AlertDeliveryRow).order_by(AlertDeliveryRow.id))
        if a.id in (d.alert_ids or [])
    ]
    return doc


def series_changes(s: Session, fingerprint: str, metric: str) -> dict[str, Any]:
    """Per source, the change points of one metric along one fingerprint (usable runs only), with the
    segments' levels and intervals, and the alerts on it; what Trends draws over the points."""
    out: dict[str, Any] = {"segments": [], "changes": [], "alerts": [], "skipped": {}}
    m = metrics.find(metric)
    sources = sorted(set(s.scalars(select(RunRow.source).where(RunRow.fingerprint == fingerprint))))
    for source in sources:
        first = s.scalars(
            select(RunRow).where(RunRow.fingerprint == fingerprint, RunRow.source == source)
        ).first()
        series = series_of(first)
        pts, skipped = usable(points(s, series, metric, rebaselined=False))
        for why, n in skipped.items():
            out["skipped"][why] = out["skipped"].get(why, 0) + n
        if len(pts) < 2 or m is None or m.better == "neither":
            continue
        found = detect(
            [p.value for p in pts],
            m.better == "higher",
            min_change_pct=m.min_change_pct,
            min_change_abs=m.min_change_abs,
        )
        bounds = [0, *(cp.index for cp in found), len(pts)]
        for i, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
            cp_before = found[i - 1] if i > 0 else None
            cp_after = found[i] if i < len(found) else None
            level = (
                cp_after.before
                if cp_after
                else cp_before.after
                if cp_before
                else sorted(p.value for p in pts)[len(pts) // 2]
            )
            ci = (cp_after.before_ci if cp_after else cp_before.after_ci if cp_before else None) or (
                None,
                None,
            )
            out["segments"].append(
                {
                    "source": source,
                    "start": pts[lo].at.isoformat(),
                    "end": pts[hi - 1].at.isoformat(),
                    "level": level,
                    "low": ci[0],
                    "high": ci[1],
                }
            )
        for cp in found:
            out["changes"].append(
                {
                    "source": source,
                    "at": pts[cp.index].at.isoformat(),
                    "run_id": pts[cp.index].run_id,
                    "before": cp.before,
                    "after": cp.after,
                    "change_pct": cp.change_pct,
                    "p_value": cp.p_value,
                    "kind": "regression" if cp.regression else "improvement",
                }
            )
    out["alerts"] = [
        alert_dict(a)
        for a in s.scalars(
            select(AlertRow)
            .where(AlertRow.fingerprint == fingerprint, AlertRow.metric == metric)
            .order_by(AlertRow.id)
        )
    ]
    return out
