"""Telling people: a delivery outbox in the database, one row per (notification, channel).

Open alerts are grouped into one notification per group (the sweep of their first slow run): a group
is sent once its sweep has ended and none of its alerts is still being confirmed (or after
:data:`GROUP_WAIT`). Each row is sent by whoever claims it first (a conditional UPDATE), retried with exponential backoff on a retryable failure
and recorded (attempts, last error, receipt): an alert is never lost because a channel was down. A
group's notified alerts that resolve get one "resolved" notification.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from farm.db.models import AlertDeliveryRow, AlertRow, SweepRow, utcnow
from farm.db.session import session_scope

log = logging.getLogger(__name__)

GROUP_WAIT = timedelta(minutes=10)  # longest a confirmed alert waits for the rest of its group
BACKOFF_S = 30.0  # first retry; doubles per attempt
BACKOFF_MAX_S = 3600.0
MAX_ATTEMPTS = 12  # about 8 hours of retries, then "failed" (still recorded, `farm alerts deliveries`)
STUCK = timedelta(minutes=10)  # a "sending" row older than this was left by a process that died


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=utcnow().tzinfo) if at is not None and at.tzinfo is None else at


def alert_dict(a: AlertRow) -> dict[str, Any]:
    """An alert as JSON (the CLI's `--format json` and notifications carry the same fields)."""
    return {
        "id": a.id,
        "state": a.state,
        "kind": a.kind,
        "metric": a.metric,
        "series": a.series_key,
        "model": a.model,
        "precision": a.precision,
        "batch_size": a.batch_size,
        "scenario": a.scenario,
        "target": a.target,
        "board": a.board,
        "source": a.source,
        "before": a.before,
        "after": a.after,
        "change_pct": a.change_pct,
        "p_value": a.p_value,
        "confirmed": a.confirmed,
        "detector": a.detector,
        "run_ids": list(a.run_ids or []),
        "baseline_run_ids": list(a.baseline_run_ids or []),
        "change_run_id": a.change_run_id,
        "sweep_id": a.sweep_id,
        "group": a.group_key,
        "cause": (a.cause or {}).get("summary"),
        "provenance_diff": (a.cause or {}).get("provenance"),
        "reason": a.reason,
        "created_at": _aware(a.created_at).isoformat(),
        "updated_at": _aware(a.updated_at).isoformat(),
        "resolved_at": _aware(a.resolved_at).isoformat() if a.resolved_at else None,
    }


def alert_docs(s: Any, rows: list[AlertRow]) -> list[dict[str, Any]]:
    """Alerts as JSON with their sweep's version labels (what the CLI, the dashboard and notifications
    show)."""
    ids = sorted({a.sweep_id for a in rows if a.sweep_id})
    labels = (
        dict(s.execute(select(SweepRow.id, SweepRow.labels).where(SweepRow.id.in_(ids))).all()) if ids else {}
    )
    return [{**alert_dict(a), "labels": dict(labels.get(a.sweep_id) or {})} for a in rows]


def _channels() -> list[Any]:
    from farm.notify import load_channels

    return load_channels()  # FARM_ALERTS, alerts.yaml beside the inventory, or the terminal


def flush(db_url: str, now: datetime | None = None) -> int:
    """Queue a delivery per channel for every group that is ready; returns how many rows it added."""
    now = now or utcnow()
    with session_scope(db_url) as s:
        queued: set[int] = set()  # alerts someone was told about
        told_resolved: set[int] = set()  # ... and told that they resolved
        for key, ids in s.execute(select(AlertDeliveryRow.group_key, AlertDeliveryRow.alert_ids)):
            (told_resolved if key.startswith("resolved:") else queued).update(ids)
        rows = list(
            s.scalars(
                select(AlertRow).where(
                    AlertRow.state.in_(("open", "acknowledged", "resolved", "detected", "confirming"))
                )
            )
        )
    groups: dict[str, list[AlertRow]] = {}
    for a in rows:
        groups.setdefault(a.group_key, []).append(a)
    running = _running_sweeps(db_url, groups)
    todo: list[tuple[str, list[int]]] = []
    for key, members in groups.items():
        new = [a for a in members if a.state == "open" and a.id not in queued]
        if new:
            # a group is its sweep: wait until the sweep ended and none of it is being confirmed
            pending = [a for a in members if a.state in ("detected", "confirming") and a.confirm_sweep_id]
            oldest = min(_aware(a.updated_at) for a in new)
            if (not pending and key not in running) or now - oldest >= GROUP_WAIT:
                todo.append((f"{key}#{min(a.id for a in new)}", sorted(a.id for a in new)))
        # notified alerts that resolved: one notice per group, once all of it resolved (or after the wait)
        back = [a for a in members if a.state == "resolved" and a.id in queued and a.id not in told_resolved]
        if back:
            still = [a for a in members if a.state in ("open", "acknowledged") and a.id in queued]
            oldest = min(_aware(a.resolved_at or a.updated_at) for a in back)
            if not still or now - oldest >= GROUP_WAIT:
                todo.append((f"resolved:{key}#{min(a.id for a in back)}", sorted(a.id for a in back)))
    if not todo:
        return 0
    channels = _channels()
    added = 0
    with session_scope(db_url) as s:
        for key, ids in todo:
            docs = [alert_dict(a) for a in s.scalars(select(AlertRow).where(AlertRow.id.in_(ids)))]
            for ch in channels:
                if not any(ch.matches(d) for d in docs):  # its routes want none of them
                    continue
                if s.scalar(
                    select(AlertDeliveryRow.id).where(
                        AlertDeliveryRow.group_key == key, AlertDeliveryRow.channel == ch.name
                    )
                ):
                    continue
                s.add(
                    AlertDeliveryRow(
                        group_key=key,
                        channel=ch.name,
                        alert_ids=ids,
                        state="pending",
                        attempts=0,
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
                added += 1
    return added


def _running_sweeps(db_url: str, groups: dict[str, list[AlertRow]]) -> set[str]:
    """The group keys whose sweep is still running."""
    ids = {key.removeprefix("sweep:"): key for key in groups if key.startswith("sweep:")}
    if not ids:
        return set()
    with session_scope(db_url) as s:
        query = select(SweepRow.id).where(SweepRow.id.in_(list(ids)), SweepRow.state == "running")
        return {ids[sweep_id] for sweep_id in s.scalars(query)}


def _notification(db_url: str, row_key: str, alert_ids: list[int]) -> Any:
    """The group's notification: a title, one line of context; the channels render a line per alert."""
    from farm.notify import Notification

    with session_scope(db_url) as s:
        alerts = alert_docs(
            s, list(s.scalars(select(AlertRow).where(AlertRow.id.in_(alert_ids)).order_by(AlertRow.id)))
        )
    n = len(alerts)
    plural = "s" if n != 1 else ""
    if row_key.startswith("resolved:"):
        title = f"resolved: alert {alert_ids[0]}" if n == 1 else f"resolved: {n} alerts"
        text = "; ".join(f"alert {a['id']}: {a['reason']}" for a in alerts)
    else:
        confirmed = sum(bool(a["confirmed"]) for a in alerts)
        title = f"{n} regression{plural}" + (" confirmed" if confirmed == n else "")
        sweeps = sorted({str(a["sweep_id"])[:8] for a in alerts if a["sweep_id"]})
        text = (
            f"{confirmed} of {n} confirmed by re-runs on the farm's own boards"
            + (f"; sweep {', '.join(sweeps)}" if sweeps else "")
            + "; `farm alerts show ID` for the cause and the runs"
        )
    return Notification(
        key=row_key,
        title=title,
        text=text,
        alerts=alerts,
        severity="info" if row_key.startswith("resolved:") else "warning",
    )


def deliver_due(db_url: str, now: datetime | None = None) -> dict[str, int]:
    """Send every delivery that is due; returns counts by outcome (sent, retry, failed)."""
    from farm.notify import DeliveryError

    now = now or utcnow()
    channels = {ch.name: ch for ch in _channels()}
    counts = {"sent": 0, "retry": 0, "failed": 0}
    with session_scope(db_url) as s:
        s.execute(
            update(AlertDeliveryRow)
            .where(AlertDeliveryRow.state == "sending", AlertDeliveryRow.next_attempt_at < now - STUCK)
            .values(state="pending")
        )
        due = list(
            s.execute(
                select(
                    AlertDeliveryRow.id,
                    AlertDeliveryRow.group_key,
                    AlertDeliveryRow.channel,
                    AlertDeliveryRow.alert_ids,
                    AlertDeliveryRow.attempts,
                )
                .where(AlertDeliveryRow.state == "pending", AlertDeliveryRow.next_attempt_at <= now)
                .order_by(AlertDeliveryRow.id)
            )
        )
    for row_id, key, channel_name, ids, attempts in due:
        with session_scope(db_url) as s:  # claim it: one sender per row
            won = s.execute(
                update(AlertDeliveryRow)
                .where(
                    AlertDeliveryRow.id == row_id,
                    AlertDeliveryRow.state == "pending",
                    AlertDeliveryRow.attempts == attempts,
                )
                .values(state="sending", attempts=attempts + 1, next_attempt_at=now)
            ).rowcount
        if not won:
            continue
        channel = channels.get(channel_name)
        values: dict[str, Any]
        try:
            if channel is None:
                raise DeliveryError(f"channel {channel_name!r} is no longer in alerts.yaml", retryable=False)
            note = channel.select(_notification(db_url, key, list(ids)))
            receipt = channel.send(note) if note is not None else "nothing this channel's routes want"
            values = {"state": "sent", "receipt": str(receipt)[:255], "sent_at": utcnow(), "last_error": None}
            counts["sent"] += 1
        except DeliveryError as exc:
            give_up = not exc.retryable or attempts + 1 >= MAX_ATTEMPTS
            delay = min(BACKOFF_S * 2**attempts, BACKOFF_MAX_S)
            values = {
                "state": "failed" if give_up else "pending",
                "last_error": str(exc)[:2000],
                "next_attempt_at": utcnow() + timedelta(seconds=delay),
            }
            counts["failed" if give_up else "retry"] += 1
            log.warning(
                "alert delivery %s to %s: %s%s",
                key,
                channel_name,
                exc,
                "" if give_up else f" (retry in {delay:.0f} s)",
            )
        except Exception as exc:  # a channel's bug: recorded and retried like an outage, never lost
            delay = min(BACKOFF_S * 2**attempts, BACKOFF_MAX_S)
            values = {
                "state": "pending",
                "last_error": f"{type(exc).__name__}: {exc}"[:2000],
                "next_attempt_at": utcnow() + timedelta(seconds=delay),
            }
            counts["retry"] += 1
            log.exception("alert delivery %s to %s failed", key, channel_name)
        with session_scope(db_url) as s:
            s.execute(update(AlertDeliveryRow).where(AlertDeliveryRow.id == row_id).values(**values))
    return counts
