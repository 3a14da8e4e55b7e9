"""An alert's states and the only ways between them, each recorded as an event.

detected -> confirming -> open -> acknowledged -> resolved | dismissed; a candidate that confirmation
runs did not reproduce is ``refuted`` (recorded as noise, never notified). Rebaselining resolves the alert
and makes the new level the series' normal.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm.alerts.series import Series
from farm.db.models import AlertEventRow, AlertRow, BaselineRow, SilenceRow, utcnow
from farm.db.session import session_scope
from farm.errors import FarmError

STATES = ("detected", "confirming", "open", "acknowledged", "resolved", "dismissed", "refuted")
#: States in which an alert is still someone's business (a new candidate on its series is the same one).
ACTIVE = ("detected", "confirming", "open", "acknowledged")
DISMISS_REASONS = ("expected", "noise", "infrastructure")
KINDS = ("regression", "invalid")

ALLOWED: dict[str, tuple[str, ...]] = {
    "detected": ("confirming", "open", "refuted", "dismissed", "resolved"),
    "confirming": ("open", "refuted", "detected", "dismissed", "resolved"),
    "open": ("acknowledged", "resolved", "dismissed"),
    "acknowledged": ("resolved", "dismissed", "open"),
    "resolved": ("open",),  # came back
    "dismissed": (),
    "refuted": (),
}


class AlertStateError(FarmError):
    """A move the lifecycle does not allow (e.g. acknowledging a resolved alert)."""


@dataclass(frozen=True)
class Candidate:
    """A suspected change on one series and metric, before it is stored."""

    series: Series
    metric: str
    kind: str
    detector: str  # check | scan | invalid
    change_run_id: int
    board: str | None
    sweep_id: str | None
    before: float | None
    after: float | None
    change_pct: float | None
    p_value: float | None
    run_ids: list[int]
    baseline_run_ids: list[int]
    details: dict[str, Any]


def _now() -> datetime:
    return utcnow()


def move(s: Session, alert: AlertRow, to: str, note: str | None = None) -> None:
    """Move ``alert`` to state ``to`` (AlertStateError when the lifecycle forbids it), with an event."""
    if to == alert.state:
        return
    if to not in ALLOWED[alert.state]:
        raise AlertStateError(f"alert {alert.id} is {alert.state}: it cannot become {to}")
    s.add(AlertEventRow(alert_id=alert.id, from_state=alert.state, to_state=to, note=note, at=_now()))
    alert.state, alert.updated_at = to, _now()
    if to in ("resolved", "dismissed", "refuted"):
        alert.resolved_at = _now()
        alert.reason = note
    elif to == "open" and alert.resolved_at is not None:
        alert.resolved_at = None


def active_alert(s: Session, series: Series, metric: str) -> AlertRow | None:
    return s.scalar(
        select(AlertRow)
        .where(
            AlertRow.fingerprint == series.fingerprint,
            AlertRow.source == series.source,
            AlertRow.metric == metric,
            AlertRow.state.in_(ACTIVE),
        )
        .order_by(AlertRow.id.desc())
        .limit(1)
    )


#: After a refuted candidate, single slow runs of that series and metric wait this long before they are
#: re-run again (a tail metric that spikes now and then would otherwise spend the daily cap on noise).
REFUTED_COOLDOWN = timedelta(hours=6)


def recently_refuted(s: Session, series: Series, metric: str) -> bool:
    since = _now() - REFUTED_COOLDOWN
    return (
        s.scalar(
            select(AlertRow.id)
            .where(
                AlertRow.fingerprint == series.fingerprint,
                AlertRow.source == series.source,
                AlertRow.metric == metric,
                AlertRow.state == "refuted",
                AlertRow.updated_at >= since,
            )
            .limit(1)
        )
        is not None
    )


def silence_for(s: Session, series_key: str, metric: str, now: datetime | None = None) -> SilenceRow | None:
    """The silence covering this series and metric now, if any."""
    now = now or _now()
    for row in s.scalars(select(SilenceRow).order_by(SilenceRow.until.desc())):
        until = row.until if row.until.tzinfo else row.until.replace(tzinfo=now.tzinfo)
        if until > now and fnmatch.fnmatchcase(series_key, row.pattern) and row.metric in (None, metric):
            return row
    return None


def record(db_url: str, candidate: Candidate, group_key: str) -> int | None:
    """Store a candidate as a detected alert; None when the series and metric already have an active
    alert or this change point is already known (a second scan, a redelivered run). A silenced series'
    candidate is stored dismissed, saying which silence."""
    c = candidate
    with session_scope(db_url) as s:
        if active_alert(s, c.series, c.metric) is not None:
            return None
        if c.detector == "check" and recently_refuted(s, c.series, c.metric):
            return None  # one slow run after re-runs called the last one noise: the scan still sees a step
        silence = silence_for(s, c.series.key, c.metric)
        row = AlertRow(
            kind=c.kind,
            state="detected",
            series_key=c.series.key,
            fingerprint=c.series.fingerprint,
            metric=c.metric,
            model=c.series.model,
            precision=c.series.precision,
            batch_size=c.series.batch_size,
            scenario=c.series.scenario,
            target=c.series.target,
            board=c.board,
            source=c.series.source,
            change_run_id=c.change_run_id,
            sweep_id=c.sweep_id,
            group_key=group_key,
            detector=c.detector,
            before=c.before,
            after=c.after,
            change_pct=c.change_pct,
            p_value=c.p_value,
            run_ids=c.run_ids,
            baseline_run_ids=c.baseline_run_ids,
            details=c.details,
            created_at=_now(),
            updated_at=_now(),
        )
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError:  # this change point is already an alert (maybe a closed one)
            return None
        s.add(
            AlertEventRow(alert_id=row.id, from_state=None, to_state="detected", note=c.detector, at=_now())
        )
        if silence is not None:
            move(
                s,
                row,
                "dismissed",
                f"silenced until {silence.until:%Y-%m-%d %H:%M} UTC (silence {silence.id})",
            )
        return row.id


def get(s: Session, alert_id: int) -> AlertRow:
    row = s.get(AlertRow, alert_id)
    if row is None:
        raise FarmError(f"no alert {alert_id} (farm alerts list shows them)")
    return row


def acknowledge(db_url: str, alert_id: int, note: str | None = None) -> None:
    with session_scope(db_url) as s:
        move(s, get(s, alert_id), "acknowledged", note or "acknowledged")


def dismiss(db_url: str, alert_id: int, reason: str, note: str | None = None) -> None:
    if reason not in DISMISS_REASONS:
        raise FarmError(f"dismiss reason {reason!r}: one of {', '.join(DISMISS_REASONS)}")
    with session_scope(db_url) as s:
        move(s, get(s, alert_id), "dismissed", reason + (f": {note}" if note else ""))


def rebaseline(db_url: str, alert_id: int, note: str | None = None) -> None:
    """Accept the alert's change as the series' new normal: detection reads the series from the change on,
    and the alert is resolved."""
    with session_scope(db_url) as s:
        alert = get(s, alert_id)
        if alert.state in ("dismissed", "refuted"):
            raise AlertStateError(f"alert {alert_id} is {alert.state}: there is no change to accept")
        s.add(
            BaselineRow(
                fingerprint=alert.fingerprint,
                source=alert.source,
                metric=alert.metric,
                since_run_id=alert.change_run_id,
                alert_id=alert.id,
                created_at=_now(),
            )
        )
        if alert.state != "resolved":
            move(s, alert, "resolved", "rebaselined" + (f": {note}" if note else ""))


def silence(
    db_url: str, pattern: str, duration: timedelta, metric: str | None = None, reason: str | None = None
) -> int:
    """Silence series matching ``pattern`` (a series key or a glob over keys) for ``duration``."""
    with session_scope(db_url) as s:
        row = SilenceRow(
            pattern=pattern, metric=metric, until=_now() + duration, reason=reason, created_at=_now()
        )
        s.add(row)
        s.flush()
        return row.id
