"""The alert passes the farm runs: after a stored run (the post-store hook), a scan of whole series, and
the periodic tick (confirmation decisions, automatic resolution, deliveries) that Celery beat sends or the
CLI runs in embedded mode."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from farm.alerts import confirm, delivery, detection
from farm.alerts.lifecycle import Candidate, move, record
from farm.alerts.series import CONFIRMATION
from farm.config import Settings
from farm.db.models import AlertRow, RunRow, SweepRow
from farm.db.session import session_scope
from farm.inventory import load_inventory
from farm.queues import Publish

log = logging.getLogger(__name__)


def group_of(c: Candidate) -> str:
    """Alerts from one sweep go out as one notification."""
    return f"sweep:{c.sweep_id}" if c.sweep_id else f"run:{c.change_run_id}"


@dataclass
class Pass:
    """What one pass did (the CLI prints it)."""

    candidates: int = 0
    recorded: list[int] = field(default_factory=list)
    publish: list[Publish] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    delivered: dict[str, int] = field(default_factory=dict)
    scanned: int = 0


def _record_and_confirm(settings: Settings, candidates: list[Candidate], out: Pass) -> None:
    out.candidates += len(candidates)
    by_run: dict[int, list[int]] = defaultdict(list)
    for c in candidates:
        alert_id = record(settings.db_url, c, group_of(c))
        if alert_id is not None:
            out.recorded.append(alert_id)
            by_run[c.change_run_id].append(alert_id)
    if by_run:
        inventory = load_inventory(settings.inventory_dir)
        for ids in by_run.values():
            out.publish += confirm.plan(settings, inventory, ids)


def after_run(settings: Settings, run_id: int) -> Pass:
    """The post-store hook: a confirmation run may finish its confirmation; any other run is checked."""
    out = Pass()
    with session_scope(settings.db_url) as s:
        run = s.get(RunRow, run_id)
        if run is None:
            return out
        purpose = s.scalar(select(SweepRow.purpose).where(SweepRow.id == run.sweep_id))
        sweep_id = run.sweep_id
        candidates = [] if purpose == CONFIRMATION else detection.check_run(s, run_id)
        invalid = None if purpose == CONFIRMATION else detection.invalid_run(s, run_id)
    if purpose == CONFIRMATION:
        out.opened += confirm.decide(settings, sweep_id)
    else:
        _record_and_confirm(settings, candidates + ([invalid] if invalid else []), out)
        out.resolved += resolve(settings, fingerprint=run.fingerprint)
    _deliver(settings, out)
    return out


def scan(settings: Settings, *, sweep_id: str | None = None) -> Pass:
    """Change-point detection over every series (of one sweep), then what a tick does."""
    out = Pass()
    with session_scope(settings.db_url) as s:
        scans = detection.scan(s, sweep_id=sweep_id)
    out.scanned = len(scans)
    _record_and_confirm(settings, [x.candidate for x in scans if x.candidate], out)
    _retry_detected(settings, out)
    tick(settings, out)
    return out


def _retry_detected(settings: Settings, out: Pass) -> None:
    """Detected alerts whose confirmation was capped: try again (the cap is per 24 h)."""
    with session_scope(settings.db_url) as s:
        waiting = defaultdict(list)
        for a in s.scalars(select(AlertRow).where(AlertRow.state == "detected")):
            waiting[a.change_run_id].append(a.id)
    if waiting:
        inventory = load_inventory(settings.inventory_dir)
        for ids in waiting.values():
            out.publish += confirm.plan(settings, inventory, ids)


def resolve(settings: Settings, *, fingerprint: str | None = None) -> list[int]:
    """Active alerts whose series came back to its old level resolve themselves."""
    done = []
    with session_scope(settings.db_url) as s:
        query = select(AlertRow).where(AlertRow.state.in_(("open", "acknowledged")))
        if fingerprint is not None:
            query = query.where(AlertRow.fingerprint == fingerprint)
        for alert in s.scalars(query):
            why = detection.back_to_normal(s, alert)
            if why:
                move(s, alert, "resolved", why)
                done.append(alert.id)
    return done


def tick(settings: Settings, out: Pass | None = None) -> Pass:
    """Decide finished confirmations (a last confirmation job that failed stores no run to trigger it),
    resolve, and deliver."""
    out = out or Pass()
    with session_scope(settings.db_url) as s:
        sweeps = set(
            s.scalars(
                select(AlertRow.confirm_sweep_id).where(
                    AlertRow.state == "confirming", AlertRow.confirm_sweep_id.is_not(None)
                )
            )
        )
    for sweep_id in sorted(sweeps):
        out.opened += confirm.decide(settings, sweep_id)
    out.resolved += resolve(settings)
    _deliver(settings, out)
    return out


def _deliver(settings: Settings, out: Pass) -> None:
    try:
        delivery.flush(settings.db_url)
        counts = delivery.deliver_due(settings.db_url)
    except Exception:  # a bad alerts.yaml must not lose a stored run: the outbox keeps the alerts
        log.exception("alert delivery failed (the alerts are stored; `farm alerts deliver` retries)")
        return
    for k, v in counts.items():
        out.delivered[k] = out.delivered.get(k, 0) + v
